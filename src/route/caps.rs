//! Caps: how many leads a buyer takes per hour, day, week and month, counted on the buyer's
//! local calendar.
//!
//! The store keeps one counter per (buyer, period key). A key names the *local* period an
//! instant falls in, so a counter resets exactly at the buyer's local period boundary:
//!
//! | period | key                    | boundary                                   |
//! |--------|------------------------|--------------------------------------------|
//! | hour   | `2026-11-25T14-06:00`  | each local hour, and each UTC offset change |
//! | day    | `2026-11-25`           | local midnight                             |
//! | week   | `2026-W48` (ISO 8601)  | local Monday 00:00; the year is the ISO year |
//! | month  | `2026-11`              | local midnight on the 1st                  |
//!
//! The hour key carries the UTC offset because a fall-back repeats a local hour: on
//! 2026-11-01 in New York, 01:00-01:59 EDT is `2026-11-01T01-04:00` and the repeated
//! 01:00-01:59 EST is `2026-11-01T01-05:00`, two hours with a counter each. On a
//! spring-forward day the skipped hour simply has no key. Days, weeks and months are named
//! by the local calendar only; a fall-back day is one 25-hour day.
//!
//! Keys depend on the time zone: changing a buyer's caps zone mid-period starts different
//! counters. A cap of 0 is allowed and means "never".

use chrono::{Datelike, Offset, Timelike};
use chrono_tz::Tz;
use serde::Deserialize;

use super::schedule::{local_time, parse_timezone};

/// `[caps]` in a buyer file, as written. Every cap is optional; none means uncapped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsConfig {
    /// Most leads per local clock hour.
    pub hour: Option<u32>,
    /// Most leads per local calendar day.
    pub day: Option<u32>,
    /// Most leads per ISO week (Monday to Sunday, local).
    pub week: Option<u32>,
    /// Most leads per local calendar month.
    pub month: Option<u32>,
    /// IANA time zone periods are counted in; defaults to the schedule's, else UTC.
    pub timezone: Option<String>,
    /// Caps on spend (the buyer's `price` per lead), per period: `spend = { day = 500.0 }`.
    pub spend: Option<SpendConfig>,
}

/// `[caps.spend]`: most money per period, in the currency of the buyer's `price`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendConfig {
    pub hour: Option<f64>,
    pub day: Option<f64>,
    pub week: Option<f64>,
    pub month: Option<f64>,
}

/// One counter a lead uses up; stored with the delivery or claim that took it.
pub use crate::store::routing::Counter;

/// A counting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    /// All periods, shortest first.
    pub const ALL: [Period; 4] = [Period::Hour, Period::Day, Period::Week, Period::Month];

    /// The config key and a stable name for storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// Compiled caps: the limits that are set, and the zone they count in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    tz: Tz,
    limits: Vec<(Period, u32)>,
    /// Spend caps in cents.
    spend: Vec<(Period, i64)>,
}

impl Caps {
    /// Compiles `[caps]`. `default_tz` is used when `caps.timezone` is absent: the caller
    /// passes the schedule's zone, or UTC when the buyer has no schedule.
    pub fn compile(config: &CapsConfig, default_tz: Tz) -> Result<Caps, String> {
        let tz = match &config.timezone {
            Some(name) => parse_timezone("caps.timezone", name)?,
            None => default_tz,
        };
        let limits = Period::ALL
            .into_iter()
            .zip([config.hour, config.day, config.week, config.month])
            .filter_map(|(p, limit)| limit.map(|l| (p, l)))
            .collect();
        let s = config.spend.clone().unwrap_or_default();
        let mut spend = Vec::new();
        for (p, limit) in Period::ALL.into_iter().zip([s.hour, s.day, s.week, s.month]) {
            if let Some(l) = limit {
                if !(l.is_finite() && l >= 0.0) {
                    return Err(format!("caps.spend.{}: {l} is not an amount", p.as_str()));
                }
                spend.push((p, (l * 100.0).round() as i64));
            }
        }
        Ok(Caps { tz, limits, spend })
    }

    /// The zone periods are counted in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The caps that are set, shortest period first.
    pub fn limits(&self) -> Vec<(Period, u32)> {
        self.limits.clone()
    }

    /// For each set cap: the period, the key of the period `at_ms` falls in, and the limit.
    pub fn keys(&self, at_ms: i64) -> Vec<(Period, String, u32)> {
        self.limits.iter().map(|&(p, limit)| (p, period_key(p, self.tz, at_ms), limit)).collect()
    }

    /// Every counter one lead at `price_cents` uses up at `at_ms`: one unit of each lead
    /// cap, and the price against each spend cap.
    pub fn counters(&self, at_ms: i64, price_cents: i64) -> Vec<Counter> {
        let mut out: Vec<Counter> = self
            .keys(at_ms)
            .into_iter()
            .map(|(p, key, limit)| Counter {
                key: format!("{}:{key}", p.as_str()),
                limit: i64::from(limit),
                amount: 1,
            })
            .collect();
        out.extend(self.spend.iter().map(|&(p, limit)| Counter {
            key: format!("spend-{}:{}", p.as_str(), period_key(p, self.tz, at_ms)),
            limit,
            amount: price_cents,
        }));
        out
    }
}

/// The stable name of the local `period` of `tz` that instant `at_ms` falls in (see the
/// module docs for the formats). Instants outside years 1..=9999 are clamped.
pub fn period_key(period: Period, tz: Tz, at_ms: i64) -> String {
    let local = local_time(tz, at_ms);
    let date = local.date_naive();
    match period {
        Period::Hour => {
            let offset = local.offset().fix().local_minus_utc();
            format!("{date}T{:02}{}", local.hour(), format_offset(offset))
        }
        Period::Day => date.to_string(),
        Period::Week => {
            let week = date.iso_week();
            format!("{:04}-W{:02}", week.year(), week.week())
        }
        Period::Month => format!("{:04}-{:02}", date.year(), date.month()),
    }
}

/// `+05:30`, `-05:00`, `+00:00`; seconds only when the offset has them (historic zones).
fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    if s == 0 { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}:{m:02}:{s:02}") }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use chrono_tz::{America, Europe};

    use super::*;

    /// Unix milliseconds of an RFC 3339 instant.
    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn key(period: Period, tz: Tz, at: &str) -> String {
        period_key(period, tz, ms(at))
    }

    #[test]
    fn the_documented_formats() {
        let at = "2026-11-25T14:30:00-06:00";
        let tz = America::Chicago;
        assert_eq!(key(Period::Hour, tz, at), "2026-11-25T14-06:00");
        assert_eq!(key(Period::Day, tz, at), "2026-11-25");
        assert_eq!(key(Period::Week, tz, at), "2026-W48");
        assert_eq!(key(Period::Month, tz, at), "2026-11");
        assert_eq!(key(Period::Hour, Tz::UTC, "2026-11-25T03:00:00Z"), "2026-11-25T03+00:00");
        assert_eq!(
            key(Period::Hour, chrono_tz::Asia::Kolkata, "2026-11-25T03:00:00Z"),
            "2026-11-25T08+05:30"
        );
    }

    #[test]
    fn keys_change_at_local_midnight_not_utc_midnight() {
        let tz = America::New_York;
        // 2026-11-25 23:59:59.999 EST is 04:59:59.999 UTC on the 26th.
        assert_eq!(key(Period::Day, tz, "2026-11-26T04:59:59.999Z"), "2026-11-25");
        assert_eq!(key(Period::Day, tz, "2026-11-26T05:00:00Z"), "2026-11-26");
        assert_eq!(key(Period::Hour, tz, "2026-11-26T04:59:59.999Z"), "2026-11-25T23-05:00");
        assert_eq!(key(Period::Hour, tz, "2026-11-26T05:00:00Z"), "2026-11-26T00-05:00");
        // UTC midnight changes nothing locally.
        assert_eq!(
            key(Period::Day, tz, "2026-11-25T23:59:59Z"),
            key(Period::Day, tz, "2026-11-26T00:00:00Z")
        );
    }

    #[test]
    fn new_york_spring_forward_has_no_key_for_the_skipped_hour() {
        let tz = America::New_York;
        assert_eq!(key(Period::Hour, tz, "2026-03-08T01:59:59.999-05:00"), "2026-03-08T01-05:00");
        assert_eq!(key(Period::Hour, tz, "2026-03-08T07:00:00Z"), "2026-03-08T03-04:00");
        assert_eq!(key(Period::Day, tz, "2026-03-08T07:00:00Z"), "2026-03-08");
        // The 23-hour day: one key from local midnight to local midnight.
        assert_eq!(key(Period::Day, tz, "2026-03-08T00:00:00-05:00"), "2026-03-08");
        assert_eq!(key(Period::Day, tz, "2026-03-08T23:59:59-04:00"), "2026-03-08");
        assert_eq!(key(Period::Day, tz, "2026-03-09T00:00:00-04:00"), "2026-03-09");
    }

    #[test]
    fn new_york_fall_back_repeated_hour_gets_two_keys() {
        let tz = America::New_York;
        let first = key(Period::Hour, tz, "2026-11-01T01:00:00-04:00");
        let first_end = key(Period::Hour, tz, "2026-11-01T01:59:59.999-04:00");
        let second = key(Period::Hour, tz, "2026-11-01T01:00:00-05:00");
        let second_end = key(Period::Hour, tz, "2026-11-01T01:59:59.999-05:00");
        assert_eq!(first, "2026-11-01T01-04:00");
        assert_eq!(first_end, first);
        assert_eq!(second, "2026-11-01T01-05:00");
        assert_eq!(second_end, second);
        assert_eq!(key(Period::Hour, tz, "2026-11-01T02:00:00-05:00"), "2026-11-01T02-05:00");
        // The 25-hour day is one day.
        assert_eq!(key(Period::Day, tz, "2026-11-01T00:00:00-04:00"), "2026-11-01");
        assert_eq!(key(Period::Day, tz, "2026-11-01T23:59:59-05:00"), "2026-11-01");
    }

    #[test]
    fn every_hour_key_is_one_contiguous_local_hour() {
        // Walk a week around each New York and Berlin transition minute by minute: a key
        // never comes back once it changed, and each lasts 60 minutes (the skipped hour has none,
        // the repeated hour has two).
        for (tz, start) in [
            (America::New_York, "2026-03-05T00:00:00Z"),
            (America::New_York, "2026-10-29T00:00:00Z"),
            (Europe::Berlin, "2026-03-26T00:00:00Z"),
            (Europe::Berlin, "2026-10-22T00:00:00Z"),
        ] {
            let start = ms(start);
            let mut runs: Vec<(String, i64)> = Vec::new();
            for m in 0..(7 * 24 * 60) {
                let k = period_key(Period::Hour, tz, start + m * 60_000);
                match runs.last_mut() {
                    Some((last, n)) if *last == k => *n += 1,
                    _ => {
                        assert!(runs.iter().all(|(seen, _)| *seen != k), "{k} came back");
                        runs.push((k, 1));
                    }
                }
            }
            assert!(runs.iter().all(|(_, n)| *n == 60), "{runs:?}");
            assert_eq!(runs.len(), 7 * 24);
        }
    }

    #[test]
    fn berlin_transitions() {
        let tz = Europe::Berlin;
        // 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        assert_eq!(key(Period::Hour, tz, "2026-03-29T00:59:59Z"), "2026-03-29T01+01:00");
        assert_eq!(key(Period::Hour, tz, "2026-03-29T01:00:00Z"), "2026-03-29T03+02:00");
        // 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET.
        assert_eq!(key(Period::Hour, tz, "2026-10-25T00:30:00Z"), "2026-10-25T02+02:00");
        assert_eq!(key(Period::Hour, tz, "2026-10-25T01:30:00Z"), "2026-10-25T02+01:00");
        assert_eq!(key(Period::Day, tz, "2026-10-24T22:00:00Z"), "2026-10-25");
        assert_eq!(key(Period::Day, tz, "2026-10-24T21:59:59Z"), "2026-10-24");
    }

    #[test]
    fn weeks_start_on_local_monday() {
        let tz = America::Chicago;
        assert_eq!(key(Period::Week, tz, "2026-11-29T23:59:59.999-06:00"), "2026-W48");
        assert_eq!(key(Period::Week, tz, "2026-11-30T00:00:00-06:00"), "2026-W49");
        // Still Sunday in Chicago while it is Monday in UTC.
        assert_eq!(key(Period::Week, tz, "2026-11-30T05:00:00Z"), "2026-W48");
    }

    #[test]
    fn year_ends_use_the_iso_week_year() {
        let tz = Europe::Berlin;
        assert_eq!(key(Period::Week, tz, "2026-12-31T12:00:00+01:00"), "2026-W53");
        assert_eq!(key(Period::Week, tz, "2027-01-01T00:00:00+01:00"), "2026-W53");
        assert_eq!(key(Period::Week, tz, "2027-01-03T23:59:59+01:00"), "2026-W53");
        assert_eq!(key(Period::Week, tz, "2027-01-04T00:00:00+01:00"), "2027-W01");
        // 2025-12-29 (Monday) is in ISO week 1 of 2026.
        assert_eq!(key(Period::Week, tz, "2025-12-28T23:59:59+01:00"), "2025-W52");
        assert_eq!(key(Period::Week, tz, "2025-12-29T00:00:00+01:00"), "2026-W01");
        assert_eq!(key(Period::Month, tz, "2026-12-31T23:59:59.999+01:00"), "2026-12");
        assert_eq!(key(Period::Month, tz, "2027-01-01T00:00:00+01:00"), "2027-01");
        assert_eq!(key(Period::Day, tz, "2027-01-01T00:00:00+01:00"), "2027-01-01");
        assert_eq!(key(Period::Hour, tz, "2027-01-01T00:00:00+01:00"), "2027-01-01T00+01:00");
        // In UTC it is still 2026.
        assert_eq!(key(Period::Month, Tz::UTC, "2027-01-01T00:00:00+01:00"), "2026-12");
    }

    #[test]
    fn months_end_on_the_local_last_day() {
        let tz = America::Los_Angeles;
        assert_eq!(key(Period::Month, tz, "2026-02-28T23:59:59.999-08:00"), "2026-02");
        assert_eq!(key(Period::Month, tz, "2026-03-01T00:00:00-08:00"), "2026-03");
        assert_eq!(key(Period::Month, tz, "2026-04-30T23:59:59-07:00"), "2026-04");
        assert_eq!(key(Period::Month, tz, "2026-05-01T06:59:59Z"), "2026-04");
        assert_eq!(key(Period::Month, tz, "2026-05-01T07:00:00Z"), "2026-05");
        assert_eq!(key(Period::Month, tz, "2028-02-29T12:00:00-08:00"), "2028-02");
    }

    #[test]
    fn keys_are_total_for_absurd_instants() {
        for p in Period::ALL {
            assert!(!period_key(p, America::New_York, i64::MIN).is_empty());
            assert!(!period_key(p, Europe::Berlin, i64::MAX).is_empty());
        }
        assert_eq!(period_key(Period::Day, Tz::UTC, i64::MAX), "9999-12-30");
    }

    #[test]
    fn compile_keeps_the_set_caps_in_period_order() {
        let config: CapsConfig = toml::from_str("month = 1500\nhour = 10\nday = 0").unwrap();
        let caps = Caps::compile(&config, America::Chicago).unwrap();
        assert_eq!(caps.timezone(), America::Chicago);
        assert_eq!(caps.limits(), vec![(Period::Hour, 10), (Period::Day, 0), (Period::Month, 1500)]);
        assert_eq!(
            caps.keys(ms("2026-11-25T14:30:00-06:00")),
            vec![
                (Period::Hour, "2026-11-25T14-06:00".to_string(), 10),
                (Period::Day, "2026-11-25".to_string(), 0),
                (Period::Month, "2026-11".to_string(), 1500),
            ]
        );
    }

    #[test]
    fn caps_timezone_overrides_the_default() {
        let config: CapsConfig = toml::from_str("day = 5\ntimezone = \"Europe/Berlin\"").unwrap();
        let caps = Caps::compile(&config, America::Chicago).unwrap();
        assert_eq!(caps.timezone(), Europe::Berlin);
        assert_eq!(caps.keys(ms("2026-11-25T23:30:00Z")), vec![(Period::Day, "2026-11-26".to_string(), 5)]);
    }

    #[test]
    fn empty_caps_are_uncapped() {
        let caps = Caps::compile(&CapsConfig::default(), Tz::UTC).unwrap();
        assert!(caps.limits().is_empty());
        assert!(caps.keys(0).is_empty());
    }

    #[test]
    fn bad_caps_config_is_refused() {
        let config = CapsConfig { timezone: Some("Mars/Olympus".into()), ..CapsConfig::default() };
        assert_eq!(
            Caps::compile(&config, Tz::UTC).unwrap_err(),
            r#"caps.timezone: unknown time zone "Mars/Olympus""#
        );
        assert!(toml::from_str::<CapsConfig>("days = 5").is_err());
        assert!(toml::from_str::<CapsConfig>("day = -1").is_err());
    }

    #[test]
    fn period_names() {
        let names: Vec<&str> = Period::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["hour", "day", "week", "month"]);
    }
}
