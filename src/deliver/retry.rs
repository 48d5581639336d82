//! When to try again: a configurable schedule with jitter, honouring `Retry-After`.
//!
//! The default follows Standard Webhooks: immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
//! 10 h, 14 h, 20 h, 24 h; after the last attempt the delivery is dead-lettered.

use std::time::Duration;

use crate::config::duration;

/// The retry schedule of a buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before attempt *n+1* (index 0 is the first attempt, normally 0).
    pub schedule: Vec<Duration>,
    /// ± jitter, in percent of the delay.
    pub jitter_percent: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let s = |secs: u64| Duration::from_secs(secs);
        Self {
            schedule: vec![
                s(0),
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(14 * 3600),
                s(20 * 3600),
                s(24 * 3600),
            ],
            jitter_percent: 20,
        }
    }
}

/// Longest `Retry-After` honoured; beyond that the buyer's own schedule applies.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

impl RetryPolicy {
    /// Parses `["0s", "5s", "5m"]`.
    pub fn parse(schedule: &[String]) -> Result<RetryPolicy, String> {
        if schedule.is_empty() {
            return Err("the retry schedule needs at least one entry (the first attempt)".into());
        }
        let schedule = schedule.iter().map(|s| duration::parse(s)).collect::<Result<Vec<_>, _>>()?;
        Ok(RetryPolicy { schedule, ..RetryPolicy::default() })
    }

    /// Attempts in all.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(u32::MAX)
    }

    /// The delay before the attempt after `attempts_made` failed ones, or `None` when the
    /// schedule is exhausted (dead-letter). `random` is uniform in [0, 1).
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        let base = *self.schedule.get(attempts_made as usize)?;
        let jitter = f64::from(self.jitter_percent) / 100.0;
        let factor = 1.0 + jitter * (2.0 * random - 1.0);
        let jittered = base.mul_f64(factor.max(0.0));
        Some(match retry_after {
            Some(ra) => jittered.max(ra.min(RETRY_AFTER_MAX)),
            None => jittered,
        })
    }
}

/// Serde helper for `[retry] schedule = [...]`.
pub fn default_schedule_strings() -> Vec<String> {
    ["0s", "5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"].iter().map(|s| s.to_string()).collect()
}

/// A uniform random number in [0, 1) for jitter (falls back to the midpoint).
pub fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_into_the_dead_letter() {
        let p = RetryPolicy::parse(&["0s".into(), "10s".into(), "1m".into()]).unwrap();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.next_delay(1, None, 0.5), Some(Duration::from_secs(10)));
        assert_eq!(p.next_delay(3, None, 0.5), None);
        let low = p.next_delay(2, None, 0.0).unwrap();
        let high = p.next_delay(2, None, 0.999_999).unwrap();
        assert!(low >= Duration::from_secs(48) && high <= Duration::from_secs(72), "{low:?} {high:?}");
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, Some(Duration::from_secs(60)), 0.5), Some(Duration::from_secs(60)));
        assert_eq!(p.next_delay(1, Some(Duration::from_secs(1)), 0.5), Some(Duration::from_secs(5)));
        assert_eq!(p.next_delay(1, Some(Duration::from_secs(999_999)), 0.5), Some(RETRY_AFTER_MAX));
    }

    #[test]
    fn random_is_in_range() {
        for _ in 0..100 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
