//! Who is signed in on this device. A nurse picks her name and enters her PIN; she
//! stays signed in until she signs out, but after a few idle minutes the device
//! locks and wants the PIN again (a ward computer is shared and left open).
//!
//! The PIN is checked offline against the argon2id verifier the clinic's server
//! sent with the staff list (`clinic_domain::pin::verify`). A 4-digit PIN has 10,000 values, so attempts are
//! limited per staff member; the PIN guards an enrolled device, it is not the
//! clinic's authentication.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
pub use clinic_domain::pin::verify as verify_pin;

/// Wrong PINs in a row before a staff member must wait.
pub const MAX_PIN_ATTEMPTS: u32 = 5;
pub const PIN_LOCKOUT: Duration = Duration::seconds(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub staff_id: String,
    pub name: String,
    pub role: String,
    pub last_active: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState<'a> {
    SignedOut,
    Active(&'a SignedIn),
    /// Still this member's session, but idle too long: the PIN unlocks it.
    Locked(&'a SignedIn),
}

#[derive(Debug, Default)]
pub struct Sessions {
    current: Option<SignedIn>,
    failures: HashMap<String, Failures>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    wait_until: Option<DateTime<Utc>>,
}

impl Sessions {
    pub fn state(&self, now: DateTime<Utc>, lock_after: Duration) -> SessionState<'_> {
        match &self.current {
            None => SessionState::SignedOut,
            Some(s) if now - s.last_active > lock_after => SessionState::Locked(s),
            Some(s) => SessionState::Active(s),
        }
    }

    /// The nurse did something: an active session stays unlocked. A locked one
    /// stays locked (only the PIN opens it).
    pub fn touch(&mut self, now: DateTime<Utc>, lock_after: Duration) {
        if let Some(s) = &mut self.current
            && now - s.last_active <= lock_after
        {
            s.last_active = now;
        }
    }

    /// Seconds to wait before `staff_id` may try another PIN, if any.
    pub fn wait_before_attempt(&self, staff_id: &str, now: DateTime<Utc>) -> Option<i64> {
        let until = self.failures.get(staff_id)?.wait_until?;
        (until > now).then(|| (until - now).num_seconds().max(1))
    }

    /// A wrong PIN; returns true when this one started a wait.
    pub fn record_failure(&mut self, staff_id: &str, now: DateTime<Utc>) -> bool {
        let f = self.failures.entry(staff_id.to_owned()).or_default();
        if f.wait_until.is_some_and(|u| u <= now) {
            *f = Failures::default();
        }
        f.count += 1;
        if f.count >= MAX_PIN_ATTEMPTS {
            f.wait_until = Some(now + PIN_LOCKOUT);
            return true;
        }
        false
    }

    /// Signs `who` in (replacing whoever was signed in) and returns who that was.
    pub fn sign_in(&mut self, who: SignedIn) -> Option<SignedIn> {
        self.failures.remove(&who.staff_id);
        self.current.replace(who)
    }

    pub fn sign_out(&mut self) -> Option<SignedIn> {
        self.current.take()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rstest::rstest;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap()
    }

    fn nurse(at: DateTime<Utc>) -> SignedIn {
        SignedIn {
            staff_id: "N001".into(),
            name: "王芳".into(),
            role: "nurse".into(),
            last_active: at,
        }
    }

    #[rstest]
    #[case::just_signed_in(&[], 0, "active")]
    #[case::idle_to_the_limit(&[], 300, "active")]
    #[case::idle_past_the_limit(&[], 301, "locked")]
    #[case::kept_alive_by_use(&[240, 480], 700, "active")]
    #[case::use_after_locking_does_not_unlock(&[400], 500, "locked")]
    fn a_session_locks_after_idle_minutes(
        #[case] touches: &[i64],
        #[case] at: i64,
        #[case] expected: &str,
    ) {
        let lock_after = Duration::minutes(5);
        let mut s = Sessions::default();
        s.sign_in(nurse(t0()));
        for t in touches {
            s.touch(t0() + Duration::seconds(*t), lock_after);
        }
        let state = match s.state(t0() + Duration::seconds(at), lock_after) {
            SessionState::SignedOut => "signed_out",
            SessionState::Active(_) => "active",
            SessionState::Locked(_) => "locked",
        };
        assert_eq!(state, expected);
        s.sign_out();
        assert_eq!(s.state(t0(), lock_after), SessionState::SignedOut);
    }

    #[test]
    fn wrong_pins_make_that_member_wait_and_a_right_one_resets() {
        let mut s = Sessions::default();
        for i in 1..MAX_PIN_ATTEMPTS {
            assert!(!s.record_failure("N001", t0()), "attempt {i}");
            assert_eq!(s.wait_before_attempt("N001", t0()), None);
        }
        assert!(s.record_failure("N001", t0()));
        assert_eq!(
            s.wait_before_attempt("N001", t0() + Duration::seconds(10)),
            Some(50)
        );
        assert_eq!(
            s.wait_before_attempt("N002", t0()),
            None,
            "others are not affected"
        );
        let later = t0() + PIN_LOCKOUT;
        assert_eq!(s.wait_before_attempt("N001", later), None);
        assert!(
            !s.record_failure("N001", later),
            "the count starts again after the wait"
        );
        s.sign_in(nurse(later));
        assert_eq!(s.failures.get("N001").map(|f| f.count), None);
    }
}
