//! Capped exponential backoff with full jitter (AWS's "full jitter": a random delay
//! between zero and the capped exponential), so many devices coming back online at
//! once do not all knock at the same moment.
//!
//! Every delay, the server's `Retry-After` included, is at most the cap: a
//! day-long (or absurd, 2^63 s) `Retry-After` must neither silence sync nor
//! overflow the clock arithmetic.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt after one more failure, within `[0, cap]`.
    /// A server's `Retry-After` is a floor up to the cap: we do not come back
    /// sooner than it asked, unless it asked for longer than the cap.
    pub fn next_delay(
        &mut self,
        retry_after: Option<Duration>,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let jittered =
            Duration::from_nanos(rng.u64(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64));
        match retry_after {
            Some(floor) => jittered.max(floor.min(self.cap)),
            None => jittered,
        }
    }
}

/// `now + delay`, saturating: never panics, whatever the delay.
pub fn deadline(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        // Beyond what the clock can represent: a year is as good as for ever here.
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
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
            let ceiling =
                Duration::from_secs(1u64 << failure.min(20)).min(Duration::from_secs(300));
            assert!(d <= ceiling, "failure {failure}: {d:?} > {ceiling:?}");
        }
        assert_eq!(b.failures(), 40);
        b.reset();
        assert!(b.next_delay(None, &mut rng) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_a_floor_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_secs(300));
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(b.next_delay(Some(Duration::from_secs(7)), &mut rng) >= Duration::from_secs(7));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400)), &mut rng),
            Duration::from_secs(300),
            "a day is capped"
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(1 << 63)), &mut rng),
            Duration::from_secs(300)
        );
    }

    proptest::proptest! {
        #[test]
        fn every_delay_is_within_zero_and_the_cap(
            base_ns in proptest::prelude::any::<u64>(),
            cap_ns in proptest::prelude::any::<u64>(),
            failures in 0u32..200,
            retry_after_secs in proptest::option::of(proptest::prelude::any::<u64>()),
            retry_after_ns in 0u32..1_000_000_000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let cap = Duration::from_nanos(cap_ns);
            let mut b = Backoff::new(Duration::from_nanos(base_ns), cap);
            let mut rng = fastrand::Rng::with_seed(seed);
            let retry_after = retry_after_secs.map(|s| Duration::new(s, retry_after_ns));
            for _ in 0..failures.min(40) {
                let d = b.next_delay(retry_after, &mut rng);
                proptest::prop_assert!(d <= cap, "{d:?} > {cap:?}");
            }
            b.failures = failures.saturating_mul(1000);
            let d = b.next_delay(retry_after, &mut rng);
            proptest::prop_assert!(d <= cap);
            if let Some(floor) = retry_after {
                proptest::prop_assert!(d >= floor.min(cap), "the server's delay is honoured up to the cap");
            }
            let now = Instant::now();
            proptest::prop_assert!(deadline(now, d) >= now);
            proptest::prop_assert!(deadline(now, retry_after.unwrap_or(Duration::MAX)) >= now, "no overflow panic");
        }

        #[test]
        fn any_retry_after_header_parses_without_panic_to_a_finite_delay(raw in ".{0,40}", secs in proptest::prelude::any::<u64>(), now_secs in 0u64..(1 << 40)) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs);
            let _ = parse_retry_after(&raw, now);
            proptest::prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(Duration::from_secs(secs)));
            let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs % 253_402_300_799));
            proptest::prop_assert!(parse_retry_after(&date, now).is_some());
        }
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
