//! Schedule: when a buyer takes leads, on the wall clock of the buyer's time zone.
//!
//! A buyer file's `[schedule]` names an IANA time zone, open windows per weekday and closed
//! dates. [`Schedule::compile`] turns that into a [`Schedule`] or an error naming the bad
//! value; a buyer without `[schedule]` gets [`Schedule::always`].
//!
//! Contract:
//! - Instants are `i64` unix milliseconds (UTC). They are only ever converted *from* UTC to
//!   local time (`from_utc_datetime`), so a local time that does not exist (spring forward)
//!   or exists twice (fall back) never panics and never has to be guessed.
//! - Windows are wall-clock times, half-open (`08:00-12:00` takes 08:00:00.000 up to
//!   11:59:59.999). When the clocks fall back, a wall time that occurs twice is open both
//!   times; when they spring forward, the part of a window inside the skipped hour never
//!   opens, and a window starting in it opens at the first instant after the gap.
//! - `24:00` is allowed as an end (end of day); `22:00-00:00` means the same as `22:00-24:00`,
//!   but `00:00-00:00` is refused as ambiguous (write `00:00-24:00` for the whole day).
//! - An end before the start crosses midnight: `22:00-02:00` on `fri` is open from Friday
//!   22:00 to Saturday 02:00. To catch swapped windows (`18:00-08:00` written for
//!   `08:00-18:00`), a window may cross midnight only if it lasts at most 12 hours; a longer
//!   night is written as two windows (`18:00-24:00` and `00:00-08:00` on the next day).
//! - Windows, including the after-midnight part of a crossing window, must not overlap.
//! - A closed date (`closed = ["2026-12-25"]`) is closed for every instant of that local
//!   date, including the after-midnight part of the previous day's crossing window, and it
//!   also cancels the windows that *start* on that date, including their after-midnight part
//!   on the next date. Closed means no lead is offered while a human could read it as closed.
//!
//! Refused at compile time: unknown time zones, malformed or empty windows, overlaps,
//! malformed dates, and a schedule that opens on no weekday at all (disable the buyer
//! instead).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Deserialize;

/// Minutes in a day; also the `24:00` end.
const DAY_MINUTES: u16 = 1440;
/// A window crossing midnight may last at most this long (minutes).
const MAX_CROSSING_MINUTES: u16 = 12 * 60;
/// How far ahead [`Schedule::next_open`] looks.
const LOOKAHEAD_MS: i64 = 14 * DAY_MS;
const DAY_MS: i64 = 86_400_000;
/// Weekday keys in `hours`, Monday first (the index is `num_days_from_monday`).
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Supported instants: 0001-01-02T00:00:00Z ..= 9999-12-30T23:59:59.999Z, so that any
/// local date is within years 1..=9999. Instants outside are clamped (they are bugs upstream,
/// and clamping keeps every function here total).
const MIN_MS: i64 = -62_135_510_400_000;
const MAX_MS: i64 = 253_402_214_399_999;

/// `[schedule]` in a buyer file, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// IANA time zone the hours and closed dates are read in (`America/Chicago`).
    pub timezone: String,
    /// Open windows per weekday. A weekday without windows is closed all day.
    pub hours: HoursConfig,
    /// Local dates (`YYYY-MM-DD`) closed all day, such as holidays.
    #[serde(default)]
    pub closed: Vec<String>,
}

/// `[schedule.hours]`: weekday → list of `"HH:MM-HH:MM"` windows.
///
/// An explicit day wins over `weekdays`, which wins over `every_day`; an explicit empty list
/// (`sat = []`) closes that day even when a shorthand covers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    /// Windows for every day of the week, unless overridden.
    pub every_day: Option<Vec<String>>,
    /// Windows for Monday to Friday, unless overridden.
    pub weekdays: Option<Vec<String>>,
    /// Monday.
    pub mon: Option<Vec<String>>,
    /// Tuesday.
    pub tue: Option<Vec<String>>,
    /// Wednesday.
    pub wed: Option<Vec<String>>,
    /// Thursday.
    pub thu: Option<Vec<String>>,
    /// Friday.
    pub fri: Option<Vec<String>>,
    /// Saturday.
    pub sat: Option<Vec<String>>,
    /// Sunday.
    pub sun: Option<Vec<String>>,
}

impl HoursConfig {
    /// The effective window strings of weekday `i` (0 = Monday), shorthands applied.
    fn day(&self, i: usize) -> &[String] {
        let explicit = [&self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun];
        let weekdays = if i < 5 { self.weekdays.as_ref() } else { None };
        explicit
            .get(i)
            .and_then(|d| d.as_ref())
            .or(weekdays)
            .or(self.every_day.as_ref())
            .map_or(&[], Vec::as_slice)
    }
}

/// One open window of a day, in minutes after local midnight.
///
/// `start < end` is a window within the day (`end` may be 1440, `24:00`); `end < start`
/// crosses midnight and ends on the next day at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    start: u16,
    end: u16,
}

impl Window {
    /// Parses `"HH:MM-HH:MM"` (spaces around `-` are tolerated). See the module docs for
    /// `24:00`, `00:00` as an end, and crossing midnight.
    pub fn parse(s: &str) -> Result<Window, String> {
        let (a, b) = s.split_once('-').ok_or_else(|| format!("window {s:?} is not \"HH:MM-HH:MM\""))?;
        let start = parse_clock(a.trim())
            .filter(|&m| m < DAY_MINUTES)
            .ok_or_else(|| format!("window {s:?}: bad start time {:?}", a.trim()))?;
        let mut end =
            parse_clock(b.trim()).ok_or_else(|| format!("window {s:?}: bad end time {:?}", b.trim()))?;
        if end == 0 && start != 0 {
            end = DAY_MINUTES;
        }
        if end == start {
            return Err(format!("window {s:?} is empty (write \"00:00-24:00\" for a whole day)"));
        }
        if end < start && DAY_MINUTES - start + end > MAX_CROSSING_MINUTES {
            return Err(format!(
                "window {s:?}: end before start (a window may cross midnight only if it lasts at most \
                 12 hours; split a longer night into \"..-24:00\" and \"00:00-..\" on the next day)"
            ));
        }
        Ok(Window { start, end })
    }

    /// Minutes after local midnight when the window opens.
    pub fn start_minute(&self) -> u16 {
        self.start
    }

    /// Minutes after the opening day's midnight when it closes (above 1440 when crossing).
    pub fn end_minute(&self) -> u16 {
        if self.crosses_midnight() { self.end + DAY_MINUTES } else { self.end }
    }

    /// Whether the window ends on the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether second-of-day `sec` of the opening day is inside.
    fn contains_today(&self, sec: u32) -> bool {
        let end = if self.crosses_midnight() { DAY_MINUTES } else { self.end };
        u32::from(self.start) * 60 <= sec && sec < u32::from(end) * 60
    }

    /// Whether second-of-day `sec` of the day after the opening day is inside.
    fn contains_next_day(&self, sec: u32) -> bool {
        self.crosses_midnight() && sec < u32::from(self.end) * 60
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", clock(self.start), clock(self.end))
    }
}

/// `"HH:MM"` with two-digit fields, `00:00` to `24:00`, as minutes after midnight.
fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Parses an IANA time zone name; `field` names the config key in the error.
pub fn parse_timezone(field: &str, name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("{field}: unknown time zone {name:?}"))
}

/// The instant `at_ms` in `tz` (clamped to years 1..=9999; see [`MIN_MS`]).
pub(crate) fn local_time(tz: Tz, at_ms: i64) -> DateTime<Tz> {
    let utc = DateTime::from_timestamp_millis(at_ms.clamp(MIN_MS, MAX_MS)).unwrap_or_default();
    tz.from_utc_datetime(&utc.naive_utc())
}

/// UTC offset of `tz` at `at_ms`, in seconds.
fn offset_secs(tz: Tz, at_ms: i64) -> i32 {
    local_time(tz, at_ms).offset().fix().local_minus_utc()
}

/// A compiled schedule. Cheap to query; immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    tz: Tz,
    /// Windows per weekday, Monday first, sorted by start.
    days: [Vec<Window>; 7],
    closed: BTreeSet<NaiveDate>,
}

impl Schedule {
    /// Always open (a buyer without `[schedule]`), in UTC.
    pub fn always() -> Schedule {
        let all_day = Window { start: 0, end: DAY_MINUTES };
        Schedule { tz: Tz::UTC, days: std::array::from_fn(|_| vec![all_day]), closed: BTreeSet::new() }
    }

    /// Checks and compiles `[schedule]`; the error names the offending value.
    pub fn compile(config: &ScheduleConfig) -> Result<Schedule, String> {
        let tz = parse_timezone("schedule.timezone", &config.timezone)?;
        let mut days: [Vec<Window>; 7] = Default::default();
        // (minute of week start, minute of week end, original text, day) for the overlap check.
        let mut spans: Vec<(u32, u32, &str, usize)> = Vec::new();
        for (i, windows) in days.iter_mut().enumerate() {
            for text in config.hours.day(i) {
                let w = Window::parse(text).map_err(|e| format!("schedule.hours.{}: {e}", DAY_NAMES[i]))?;
                let base = i as u32 * u32::from(DAY_MINUTES);
                spans.push((base + u32::from(w.start), base + u32::from(w.end_minute()), text, i));
                windows.push(w);
            }
            windows.sort();
        }
        if spans.is_empty() {
            return Err("schedule.hours: opens on no day (disable the buyer instead)".into());
        }
        check_overlaps(&mut spans)?;
        let closed = config
            .closed
            .iter()
            .map(|d| {
                parse_date(d).ok_or_else(|| format!("schedule.closed: bad date {d:?} (want YYYY-MM-DD)"))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Schedule { tz, days, closed })
    }

    /// The time zone the schedule is read in (also the default for caps).
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether the buyer takes leads at `at_ms`.
    pub fn is_open(&self, at_ms: i64) -> bool {
        self.is_open_wall(local_time(self.tz, at_ms).naive_local())
    }

    fn is_open_wall(&self, wall: NaiveDateTime) -> bool {
        let date = wall.date();
        if self.closed.contains(&date) {
            return false;
        }
        let sec = wall.time().num_seconds_from_midnight();
        if self.windows_of(date).iter().any(|w| w.contains_today(sec)) {
            return true;
        }
        date.pred_opt().is_some_and(|prev| {
            !self.closed.contains(&prev) && self.windows_of(prev).iter().any(|w| w.contains_next_day(sec))
        })
    }

    fn windows_of(&self, date: NaiveDate) -> &[Window] {
        self.days.get(date.weekday().num_days_from_monday() as usize).map_or(&[], Vec::as_slice)
    }

    /// The first instant at or after `at_ms` when the schedule is open: `at_ms` itself when
    /// open now, else the instant it opens, if that is within 14 days.
    ///
    /// DST-correct: a window starting inside a skipped hour opens when the gap ends, and a
    /// wall time repeated by a fall-back is found again. Assumes a zone changes its UTC offset
    /// at most once within 24 hours (true of real DST rules); a second change within the same
    /// day could be missed, never panicked on.
    pub fn next_open(&self, at_ms: i64) -> Option<i64> {
        if !(MIN_MS..=MAX_MS).contains(&at_ms) {
            return None;
        }
        if self.is_open(at_ms) {
            return Some(at_ms);
        }
        let limit = at_ms.saturating_add(LOOKAHEAD_MS).min(MAX_MS);
        let mut t = at_ms;
        // Each round ends on a window start, an offset change or a day's step: bounded.
        for _ in 0..10_000 {
            if t >= limit {
                return None;
            }
            let local = local_time(self.tz, t);
            let offset = local.offset().fix().local_minus_utc();
            // With the offset of `t`, wall time and UTC move together until the next change.
            let to_start = self
                .next_start_after(local.naive_local())
                .map(|start| (start - local.naive_local()).num_milliseconds());
            let step = to_start.map_or(DAY_MS, |d| d.min(DAY_MS));
            let end = t.saturating_add(step).min(limit);
            if offset_secs(self.tz, end) != offset {
                let change = self.first_change(t, end, offset);
                if self.is_open(change) {
                    return Some(change);
                }
                t = change;
            } else {
                if self.is_open(end) {
                    return Some(end);
                }
                t = end;
            }
        }
        None
    }

    /// The next wall time strictly after `wall` at which a window starts on an open date.
    fn next_start_after(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = wall.date();
        for _ in 0..16 {
            if !self.closed.contains(&date) {
                for w in self.windows_of(date) {
                    let time = NaiveTime::from_num_seconds_from_midnight_opt(u32::from(w.start) * 60, 0)?;
                    let start = date.and_time(time);
                    if start > wall {
                        return Some(start);
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The first millisecond in `(lo, hi]` whose UTC offset is not `offset` (at `lo` it is,
    /// at `hi` it is not).
    fn first_change(&self, mut lo: i64, mut hi: i64, offset: i32) -> i64 {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_secs(self.tz, mid) == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
}

/// Sorts spans by start and reports the first pair that overlaps, including a Sunday window
/// crossing into Monday.
fn check_overlaps(spans: &mut [(u32, u32, &str, usize)]) -> Result<(), String> {
    const WEEK: u32 = 7 * DAY_MINUTES as u32;
    spans.sort();
    let overlap = |a: &(u32, u32, &str, usize), b: &(u32, u32, &str, usize)| {
        format!(
            "schedule.hours: windows {:?} ({}) and {:?} ({}) overlap",
            a.2, DAY_NAMES[a.3], b.2, DAY_NAMES[b.3]
        )
    };
    for pair in spans.windows(2) {
        if let [a, b] = pair
            && b.0 < a.1
        {
            return Err(overlap(a, b));
        }
    }
    for a in spans.iter().filter(|a| a.1 > WEEK) {
        if let Some(b) = spans.iter().find(|b| b.0 < a.1 - WEEK) {
            return Err(overlap(a, b));
        }
    }
    Ok(())
}

/// `YYYY-MM-DD`, strictly.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let ok_shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !ok_shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix milliseconds of an RFC 3339 instant (`2026-03-08T01:59:00-05:00`).
    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn config(tz: &str, hours: &str, closed: &[&str]) -> ScheduleConfig {
        let hours: HoursConfig = toml::from_str(hours).unwrap();
        ScheduleConfig { timezone: tz.into(), hours, closed: closed.iter().map(|s| s.to_string()).collect() }
    }

    fn schedule(tz: &str, hours: &str, closed: &[&str]) -> Schedule {
        Schedule::compile(&config(tz, hours, closed)).unwrap()
    }

    fn error(tz: &str, hours: &str, closed: &[&str]) -> String {
        Schedule::compile(&config(tz, hours, closed)).unwrap_err()
    }

    #[test]
    fn the_documented_example_parses_from_toml() {
        let text = r#"
            timezone = "America/Chicago"
            hours = { mon = ["08:00-12:00", "13:00-18:00"], tue = ["08:00-18:00"], sat = ["10:00-14:00"] }
            closed = ["2026-12-25", "2027-01-01"]
        "#;
        let config: ScheduleConfig = toml::from_str(text).unwrap();
        let s = Schedule::compile(&config).unwrap();
        assert_eq!(s.timezone(), chrono_tz::America::Chicago);
        // Monday 2026-11-23, CST (UTC-6).
        assert!(s.is_open(ms("2026-11-23T08:00:00-06:00")));
        assert!(s.is_open(ms("2026-11-23T11:59:59.999-06:00")));
        assert!(!s.is_open(ms("2026-11-23T12:00:00-06:00")));
        assert!(s.is_open(ms("2026-11-23T13:00:00-06:00")));
        assert!(!s.is_open(ms("2026-11-23T18:00:00-06:00")));
        assert!(!s.is_open(ms("2026-11-23T07:59:59.999-06:00")));
        // Wednesday is missing: closed.
        assert!(!s.is_open(ms("2026-11-25T10:00:00-06:00")));
        // Saturday.
        assert!(s.is_open(ms("2026-11-28T10:30:00-06:00")));
        // Same wall time in summer (CDT, UTC-5).
        assert!(s.is_open(ms("2026-07-06T08:00:00-05:00")));
        assert!(!s.is_open(ms("2026-07-06T07:59:00-05:00")));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = r#"
            timezone = "UTC"
            hours = { monday = ["08:00-12:00"] }
        "#;
        assert!(toml::from_str::<ScheduleConfig>(text).is_err());
        let text = r#"
            timezone = "UTC"
            hours = { mon = ["08:00-12:00"] }
            holidays = []
        "#;
        assert!(toml::from_str::<ScheduleConfig>(text).is_err());
    }

    #[test]
    fn always_is_always_open() {
        let s = Schedule::always();
        for at in [0, ms("2026-03-08T02:30:00Z"), ms("2026-12-25T00:00:00Z"), i64::MIN, i64::MAX] {
            assert!(s.is_open(at));
        }
        assert_eq!(s.next_open(12_345), Some(12_345));
        assert_eq!(s.timezone(), Tz::UTC);
    }

    #[test]
    fn shorthands_apply_and_explicit_days_override() {
        let s = schedule(
            "UTC",
            r#"every_day = ["10:00-14:00"]
               weekdays = ["08:00-18:00"]
               wed = ["09:00-10:00"]
               sun = []"#,
            &[],
        );
        // Mon 2026-11-23 .. Sun 2026-11-29.
        assert!(s.is_open(ms("2026-11-23T08:00:00Z")));
        assert!(s.is_open(ms("2026-11-27T17:59:00Z")));
        assert!(!s.is_open(ms("2026-11-25T12:00:00Z")));
        assert!(s.is_open(ms("2026-11-25T09:30:00Z")));
        assert!(s.is_open(ms("2026-11-28T10:00:00Z")));
        assert!(!s.is_open(ms("2026-11-28T09:59:00Z")));
        assert!(!s.is_open(ms("2026-11-29T12:00:00Z")));
    }

    #[test]
    fn every_day_alone_covers_the_weekend() {
        let s = schedule("UTC", r#"every_day = ["00:00-24:00"]"#, &[]);
        assert!(s.is_open(ms("2026-11-29T23:59:59.999Z")));
        assert!(s.is_open(ms("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn end_of_day_is_24_00_or_00_00() {
        let a = schedule("UTC", r#"mon = ["20:00-24:00"]"#, &[]);
        let b = schedule("UTC", r#"mon = ["20:00-00:00"]"#, &[]);
        assert_eq!(a, b);
        assert!(a.is_open(ms("2026-11-23T23:59:59.999Z")));
        assert!(!a.is_open(ms("2026-11-24T00:00:00Z")));
        assert_eq!(Window::parse("20:00-00:00").unwrap().to_string(), "20:00-24:00");
    }

    #[test]
    fn a_window_crossing_midnight_ends_the_next_day() {
        let s = schedule("UTC", r#"fri = ["22:00-02:00"]"#, &[]);
        assert!(!s.is_open(ms("2026-11-27T21:59:59Z")));
        assert!(s.is_open(ms("2026-11-27T22:00:00Z")));
        assert!(s.is_open(ms("2026-11-28T00:00:00Z")));
        assert!(s.is_open(ms("2026-11-28T01:59:59.999Z")));
        assert!(!s.is_open(ms("2026-11-28T02:00:00Z")));
        // Thursday night is not open.
        assert!(!s.is_open(ms("2026-11-27T01:00:00Z")));
    }

    #[test]
    fn a_sunday_window_crosses_into_monday() {
        let s = schedule("UTC", r#"sun = ["23:00-01:00"]"#, &[]);
        assert!(s.is_open(ms("2026-11-29T23:30:00Z")));
        assert!(s.is_open(ms("2026-11-30T00:30:00Z")));
        assert!(!s.is_open(ms("2026-11-30T01:00:00Z")));
    }

    #[test]
    fn a_closed_date_closes_the_day_and_the_nights_touching_it() {
        let s = schedule("Europe/Berlin", r#"every_day = ["08:00-12:00", "22:00-02:00"]"#, &["2026-12-25"]);
        // The 24th's night is cut at midnight.
        assert!(s.is_open(ms("2026-12-24T23:59:00+01:00")));
        assert!(!s.is_open(ms("2026-12-25T00:00:00+01:00")));
        assert!(!s.is_open(ms("2026-12-25T01:00:00+01:00")));
        assert!(!s.is_open(ms("2026-12-25T09:00:00+01:00")));
        assert!(!s.is_open(ms("2026-12-25T23:00:00+01:00")));
        // The 25th's night, after midnight, is cancelled with it.
        assert!(!s.is_open(ms("2026-12-26T01:00:00+01:00")));
        assert!(s.is_open(ms("2026-12-26T08:00:00+01:00")));
        assert!(s.is_open(ms("2026-12-26T23:00:00+01:00")));
        assert!(s.is_open(ms("2026-12-27T01:00:00+01:00")));
    }

    #[test]
    fn closed_dates_are_local_dates() {
        // 2026-12-25 in Chicago ends at 06:00 UTC on the 26th.
        let s = schedule("America/Chicago", r#"every_day = ["00:00-24:00"]"#, &["2026-12-25"]);
        assert!(s.is_open(ms("2026-12-25T05:59:59Z")));
        assert!(!s.is_open(ms("2026-12-25T06:00:00Z")));
        assert!(!s.is_open(ms("2026-12-26T05:59:59.999Z")));
        assert!(s.is_open(ms("2026-12-26T06:00:00Z")));
    }

    #[test]
    fn new_york_spring_forward_skips_the_hour_without_panicking() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        let s = schedule("America/New_York", r#"sun = ["02:00-02:30", "02:30-03:30"]"#, &[]);
        assert!(!s.is_open(ms("2026-03-08T01:59:59-05:00")));
        // The first instant after the gap is wall 03:00, inside "02:30-03:30".
        assert!(s.is_open(ms("2026-03-08T03:00:00-04:00")));
        assert!(!s.is_open(ms("2026-03-08T03:30:00-04:00")));
        // Every minute of the day answers without panicking.
        let day = ms("2026-03-08T00:00:00-05:00");
        for m in 0..(24 * 60) {
            s.is_open(day + m * 60_000);
        }
        // A window entirely in the gap never opens; it is found next week.
        let gap = schedule("America/New_York", r#"sun = ["02:10-02:20"]"#, &[]);
        assert_eq!(gap.next_open(ms("2026-03-08T00:00:00-05:00")), Some(ms("2026-03-15T02:10:00-04:00")));
    }

    #[test]
    fn new_york_fall_back_opens_the_repeated_hour_twice() {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:00-02:00 happens twice.
        let s = schedule("America/New_York", r#"sun = ["01:00-01:30"]"#, &[]);
        assert!(s.is_open(ms("2026-11-01T01:10:00-04:00")));
        assert!(!s.is_open(ms("2026-11-01T01:40:00-04:00")));
        assert!(s.is_open(ms("2026-11-01T01:10:00-05:00")));
        assert!(!s.is_open(ms("2026-11-01T01:30:00-05:00")));
        // After the first occurrence closes, it opens again at the second.
        assert_eq!(s.next_open(ms("2026-11-01T01:45:00-04:00")), Some(ms("2026-11-01T01:00:00-05:00")));
    }

    #[test]
    fn fall_back_reopens_a_window_at_the_transition_itself() {
        // Wall clock jumps from 01:59:59 EDT back to 01:00 EST, inside "00:30-01:15".
        let s = schedule("America/New_York", r#"sun = ["00:30-01:15"]"#, &[]);
        assert_eq!(s.next_open(ms("2026-11-01T01:20:00-04:00")), Some(ms("2026-11-01T06:00:00Z")));
    }

    #[test]
    fn spring_forward_opens_a_window_starting_in_the_gap_when_the_gap_ends() {
        // Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let s = schedule("Europe/Berlin", r#"sun = ["02:30-04:00"]"#, &[]);
        assert!(!s.is_open(ms("2026-03-29T01:59:59+01:00")));
        assert!(s.is_open(ms("2026-03-29T03:00:00+02:00")));
        assert_eq!(s.next_open(ms("2026-03-29T00:00:00+01:00")), Some(ms("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn berlin_windows_follow_the_wall_clock_across_dst() {
        let s = schedule("Europe/Berlin", r#"every_day = ["09:00-17:00"]"#, &[]);
        // Saturday before and Monday after the spring change: 08:00 UTC vs 07:00 UTC.
        assert_eq!(s.next_open(ms("2026-03-28T00:00:00Z")), Some(ms("2026-03-28T08:00:00Z")));
        assert_eq!(s.next_open(ms("2026-03-28T17:00:00Z")), Some(ms("2026-03-29T07:00:00Z")));
        // Autumn: 2026-10-25 03:00 CEST becomes 02:00 CET.
        assert_eq!(s.next_open(ms("2026-10-24T16:00:00Z")), Some(ms("2026-10-25T08:00:00Z")));
        assert!(s.is_open(ms("2026-10-25T16:59:00+01:00")));
    }

    #[test]
    fn next_open_over_a_weekend() {
        let s = schedule("America/New_York", r#"weekdays = ["09:00-17:00"]"#, &[]);
        // Friday 2026-11-27 17:00 → Monday 2026-11-30 09:00 EST.
        assert_eq!(s.next_open(ms("2026-11-27T17:00:00-05:00")), Some(ms("2026-11-30T09:00:00-05:00")));
        assert_eq!(s.next_open(ms("2026-11-28T12:34:56.789-05:00")), Some(ms("2026-11-30T09:00:00-05:00")));
        // Open now: now.
        let now = ms("2026-11-30T10:00:00.5-05:00");
        assert_eq!(s.next_open(now), Some(now));
        // Over the fall-back weekend: Friday EDT → Monday EST.
        assert_eq!(s.next_open(ms("2026-10-30T18:00:00-04:00")), Some(ms("2026-11-02T09:00:00-05:00")));
    }

    #[test]
    fn next_open_skips_closed_dates() {
        let s = schedule("America/Chicago", r#"weekdays = ["08:00-17:00"]"#, &["2026-12-25", "2027-01-01"]);
        // Thursday 24th evening → Monday 28th (the 25th is closed).
        assert_eq!(s.next_open(ms("2026-12-24T18:00:00-06:00")), Some(ms("2026-12-28T08:00:00-06:00")));
    }

    #[test]
    fn next_open_from_inside_a_closed_date_ignores_its_cancelled_night() {
        let s = schedule("UTC", r#"every_day = ["22:00-02:00"]"#, &["2026-12-25"]);
        assert_eq!(s.next_open(ms("2026-12-25T03:00:00Z")), Some(ms("2026-12-26T22:00:00Z")));
    }

    #[test]
    fn next_open_looks_14_days_ahead() {
        let closed: Vec<String> = (1..=20).map(|d| format!("2026-12-{d:02}")).collect::<Vec<_>>();
        let closed: Vec<&str> = closed.iter().map(String::as_str).collect();
        let s = schedule("UTC", r#"every_day = ["09:00-10:00"]"#, &closed);
        assert_eq!(s.next_open(ms("2026-11-30T12:00:00Z")), None);
        assert_eq!(s.next_open(ms("2026-12-07T12:00:00Z")), Some(ms("2026-12-21T09:00:00Z")));
        // Exactly 14 days is still found; one millisecond more is not.
        assert_eq!(s.next_open(ms("2026-12-07T09:00:00Z")), Some(ms("2026-12-21T09:00:00Z")));
        assert_eq!(s.next_open(ms("2026-12-07T08:59:59.999Z")), None);
    }

    #[test]
    fn next_open_far_outside_the_supported_range_is_none() {
        let s = schedule("UTC", r#"mon = ["09:00-10:00"]"#, &[]);
        assert_eq!(s.next_open(i64::MAX), None);
        assert_eq!(s.next_open(i64::MIN), None);
        let _ = s.is_open(i64::MAX);
        let _ = s.is_open(i64::MIN);
    }

    #[test]
    fn next_open_agrees_with_a_minute_scan() {
        let hours = r#"weekdays = ["08:00-12:00", "13:00-18:00"]
                       fri = ["22:00-02:00"]
                       sat = ["22:00-00:30"]
                       sun = ["01:00-01:30", "02:15-02:45"]"#;
        // A week of starting points around each transition: New York (2026-03-08, 2026-11-01),
        // Berlin (2026-03-29, 2026-10-25) and Lord Howe, whose clocks move by 30 minutes
        // (2026-04-05, 2026-10-04). Closed dates touch the crossing windows.
        let cases = [
            ("America/New_York", "2026-03-04T00:00:00Z", ["2026-03-07", "2026-03-10"]),
            ("America/New_York", "2026-10-28T00:00:00Z", ["2026-10-31", "2026-11-03"]),
            ("Europe/Berlin", "2026-03-25T00:00:00Z", ["2026-03-27", "2026-03-30"]),
            ("Europe/Berlin", "2026-10-21T00:00:00Z", ["2026-10-24", "2026-10-26"]),
            ("Australia/Lord_Howe", "2026-04-01T00:00:00Z", ["2026-04-03", "2026-04-06"]),
            ("Australia/Lord_Howe", "2026-09-30T00:00:00Z", ["2026-10-02", "2026-10-05"]),
        ];
        for (tz, start, closed) in cases {
            let s = schedule(tz, hours, &closed);
            let start = ms(start);
            let mut t = start;
            while t < start + 7 * DAY_MS {
                let scanned = (0..=14 * 24 * 60).map(|m| t + m * 60_000).find(|&u| s.is_open(u));
                assert_eq!(s.next_open(t), scanned, "{tz} from {t}");
                t += 7 * 60_000;
            }
        }
    }

    #[test]
    fn bad_time_zones_are_named() {
        assert_eq!(
            error("America/Chicgo", r#"mon = ["08:00-12:00"]"#, &[]),
            r#"schedule.timezone: unknown time zone "America/Chicgo""#
        );
    }

    #[test]
    fn bad_windows_are_named() {
        let cases = [
            ("25:00-26:00", "bad start time \"25:00\""),
            ("08:00-24:01", "bad end time \"24:01\""),
            ("24:00-01:00", "bad start time \"24:00\""),
            ("8:00-12:00", "bad start time \"8:00\""),
            ("08:60-12:00", "bad start time \"08:60\""),
            ("08:00", "is not \"HH:MM-HH:MM\""),
            ("08:00-08:00", "is empty"),
            ("00:00-00:00", "is empty"),
            ("18:00-08:00", "end before start"),
            ("13:00-12:00", "end before start"),
        ];
        for (window, expected) in cases {
            let e = error("UTC", &format!("tue = [{window:?}]"), &[]);
            assert!(e.starts_with("schedule.hours.tue: window"), "{e}");
            assert!(e.contains(window), "{e}");
            assert!(e.contains(expected), "{window}: {e}");
        }
    }

    #[test]
    fn tolerated_window_spellings() {
        assert_eq!(Window::parse("08:00 - 12:00").unwrap(), Window::parse("08:00-12:00").unwrap());
        let night = Window::parse("20:00-08:00").unwrap();
        assert!(night.crosses_midnight());
        assert_eq!((night.start_minute(), night.end_minute()), (1200, 1920));
    }

    #[test]
    fn overlapping_windows_are_named() {
        let e = error("UTC", r#"mon = ["08:00-12:00", "11:00-13:00"]"#, &[]);
        assert_eq!(e, r#"schedule.hours: windows "08:00-12:00" (mon) and "11:00-13:00" (mon) overlap"#);
        // Touching windows are fine.
        schedule("UTC", r#"mon = ["08:00-12:00", "12:00-13:00"]"#, &[]);
        // A crossing window overlapping the next day's first window.
        let e = error(
            "UTC",
            r#"mon = ["22:00-02:00"]
                               tue = ["01:00-05:00"]"#,
            &[],
        );
        assert!(e.contains(r#""22:00-02:00" (mon)"#) && e.contains(r#""01:00-05:00" (tue)"#), "{e}");
        // Sunday into Monday.
        let e = error(
            "UTC",
            r#"sun = ["23:00-03:00"]
                               mon = ["02:00-05:00"]"#,
            &[],
        );
        assert!(e.contains("(sun)") && e.contains("(mon)"), "{e}");
        // Via a shorthand.
        let e = error("UTC", r#"every_day = ["20:00-04:00", "03:00-05:00"]"#, &[]);
        assert!(e.contains("overlap"), "{e}");
    }

    #[test]
    fn bad_dates_are_named() {
        for bad in ["2026-02-30", "2026-13-01", "26-12-25", "2026-1-05", "2026/12/25", "christmas", ""] {
            let e = error("UTC", r#"mon = ["08:00-12:00"]"#, &[bad]);
            assert_eq!(e, format!("schedule.closed: bad date {bad:?} (want YYYY-MM-DD)"));
        }
    }

    #[test]
    fn a_schedule_open_on_no_day_is_refused() {
        assert!(error("UTC", "", &[]).contains("opens on no day"));
        assert!(error("UTC", r#"weekdays = []"#, &[]).contains("opens on no day"));
    }
}
