//! Capped exponential backoff with full jitter (AWS's "full jitter": a random delay
//! between zero and the capped exponential), so many devices coming back online at
//! once do not all knock at the same moment.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, failures: 0 }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt after one more failure. A server's
    /// `Retry-After` is a floor: we never come back sooner than it asked.
    pub fn next_delay(&mut self, retry_after: Option<Duration>, rng: &mut fastrand::Rng) -> Duration {
        let exp = self.base.saturating_mul(1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let jittered = Duration::from_nanos(rng.u64(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64));
        match retry_after {
            Some(floor) => jittered.max(floor),
            None => jittered,
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date; `None` if neither.
pub fn parse_retry_after(raw: &str, now: SystemTime) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn delays_grow_stay_under_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut rng = fastrand::Rng::with_seed(7);
        for failure in 0..40u32 {
            let d = b.next_delay(None, &mut rng);
            let ceiling = Duration::from_secs(1u64 << failure.min(20)).min(Duration::from_secs(300));
            assert!(d <= ceiling, "failure {failure}: {d:?} > {ceiling:?}");
        }
        assert_eq!(b.failures(), 40);
        b.reset();
        assert!(b.next_delay(None, &mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(10));
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(b.next_delay(Some(Duration::from_secs(7)), &mut rng) >= Duration::from_secs(7));
    }

    #[rstest]
    #[case("120", Some(120))]
    #[case(" 5 ", Some(5))]
    #[case("Thu, 01 Jan 1970 00:01:40 GMT", Some(40))]
    #[case("Thu, 01 Jan 1970 00:00:10 GMT", Some(0))]
    #[case("soon", None)]
    #[case("-3", None)]
    fn retry_after_takes_seconds_or_a_date(#[case] raw: &str, #[case] secs: Option<u64>) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
        assert_eq!(parse_retry_after(raw, now), secs.map(Duration::from_secs));
    }
}
