//! Who is signed in on this device. A nurse picks her name and enters her PIN; she
//! stays signed in until she signs out, but after a few idle minutes (or when she
//! locks it) the device locks and wants the PIN again (a ward computer is shared
//! and left open). A locked session hides everything: it is nobody in the role
//! table (`clinic_domain::roles`).
//!
//! A locked session belongs to its member: her PIN unlocks it, and nobody else
//! signs her out, by signing out or by signing in over it ([`Held`]), until it has
//! been locked for [`LOCKED_SESSION_LAPSES_AFTER`] (a shift: then it ends, and the
//! audit trail says she was signed out).
//!
//! The PIN is checked offline against the argon2id verifier the clinic's server
//! sent with the staff list (`clinic_domain::pin::verify`); wrong PINs are counted
//! in the store (`clinic_store::lockout`), so a restart does not reset them.

use chrono::{DateTime, Duration, Utc};
use clinic_domain::StaffRole;
pub use clinic_domain::pin::verify as verify_pin;
use clinic_domain::roles::Actor;

/// A session locked this long ends when someone else signs in.
pub const LOCKED_SESSION_LAPSES_AFTER: Duration = Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub staff_id: String,
    pub name: String,
    pub role: StaffRole,
    pub last_active: DateTime<Utc>,
    /// Locked on purpose (the lock button) rather than by idling.
    pub locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState<'a> {
    SignedOut,
    Active(&'a SignedIn),
    /// Still this member's session, but idle too long or locked: the PIN unlocks it.
    Locked(&'a SignedIn),
}

impl SessionState<'_> {
    /// Who this is in the role table: a locked session is nobody.
    pub fn actor(&self) -> Actor {
        match self {
            SessionState::Active(s) => Actor::Staff(s.role),
            SessionState::SignedOut | SessionState::Locked(_) => Actor::Nobody,
        }
    }
}

/// Another member's locked session is in the way: she unlocks it with her PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held;

#[derive(Debug, Default)]
pub struct Sessions {
    current: Option<SignedIn>,
}

impl Sessions {
    pub fn state(&self, now: DateTime<Utc>, lock_after: Duration) -> SessionState<'_> {
        match &self.current {
            None => SessionState::SignedOut,
            Some(s) if s.locked || now - s.last_active > lock_after => SessionState::Locked(s),
            Some(s) => SessionState::Active(s),
        }
    }

    /// The nurse did something: an active session stays unlocked. A locked one
    /// stays locked (only the PIN opens it).
    pub fn touch(&mut self, now: DateTime<Utc>, lock_after: Duration) {
        if let Some(s) = &mut self.current
            && !s.locked
            && now - s.last_active <= lock_after
        {
            s.last_active = now;
        }
    }

    /// Locks the session now (the member steps away).
    pub fn lock(&mut self) {
        if let Some(s) = &mut self.current {
            s.locked = true;
        }
    }

    /// Whether `staff_id` may sign in now: not over another member's locked
    /// session (unless it lapsed).
    pub fn check_sign_in(
        &self,
        staff_id: &str,
        now: DateTime<Utc>,
        lock_after: Duration,
    ) -> Result<(), Held> {
        match self.state(now, lock_after) {
            SessionState::Locked(s)
                if s.staff_id != staff_id
                    && now - s.last_active <= LOCKED_SESSION_LAPSES_AFTER + lock_after =>
            {
                Err(Held)
            }
            _ => Ok(()),
        }
    }

    /// Signs `who` in (replacing whoever was signed in, unless [`Held`]) and
    /// returns who that was.
    pub fn sign_in(
        &mut self,
        who: SignedIn,
        lock_after: Duration,
    ) -> Result<Option<SignedIn>, Held> {
        self.check_sign_in(&who.staff_id, who.last_active, lock_after)?;
        Ok(self.current.replace(who))
    }

    /// Signs out an active session; a locked one needs its PIN first ([`Held`]).
    pub fn sign_out(
        &mut self,
        now: DateTime<Utc>,
        lock_after: Duration,
    ) -> Result<Option<SignedIn>, Held> {
        if let SessionState::Locked(_) = self.state(now, lock_after) {
            return Err(Held);
        }
        Ok(self.current.take())
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

    fn member(id: &str, at: DateTime<Utc>) -> SignedIn {
        SignedIn {
            staff_id: id.into(),
            name: "王芳".into(),
            role: StaffRole::Nurse,
            last_active: at,
            locked: false,
        }
    }

    const LOCK_AFTER: Duration = Duration::minutes(5);

    fn state_name(s: &Sessions, at: DateTime<Utc>) -> &'static str {
        match s.state(at, LOCK_AFTER) {
            SessionState::SignedOut => "signed_out",
            SessionState::Active(_) => "active",
            SessionState::Locked(_) => "locked",
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
        let mut s = Sessions::default();
        s.sign_in(member("N001", t0()), LOCK_AFTER).unwrap();
        for t in touches {
            s.touch(t0() + Duration::seconds(*t), LOCK_AFTER);
        }
        assert_eq!(state_name(&s, t0() + Duration::seconds(at)), expected);
        let at = t0() + Duration::seconds(at);
        assert_eq!(s.sign_out(at, LOCK_AFTER).is_ok(), expected == "active");
    }

    #[test]
    fn a_locked_session_is_nobody_and_stays_its_members() {
        let mut s = Sessions::default();
        s.sign_in(member("N001", t0()), LOCK_AFTER).unwrap();
        assert_eq!(
            s.state(t0(), LOCK_AFTER).actor(),
            Actor::Staff(StaffRole::Nurse)
        );
        s.lock();
        s.touch(t0(), LOCK_AFTER);
        assert_eq!(state_name(&s, t0()), "locked");
        assert_eq!(s.state(t0(), LOCK_AFTER).actor(), Actor::Nobody);
        assert_eq!(
            s.sign_out(t0(), LOCK_AFTER),
            Err(Held),
            "no sign-out without her PIN"
        );
        assert_eq!(
            s.sign_in(member("N002", t0()), LOCK_AFTER),
            Err(Held),
            "nobody signs in over her"
        );
        assert_eq!(state_name(&s, t0()), "locked");
        let lapsed = t0() + LOCKED_SESSION_LAPSES_AFTER + LOCK_AFTER + Duration::seconds(1);
        assert_eq!(
            s.sign_in(member("N002", lapsed), LOCK_AFTER)
                .unwrap()
                .map(|p| p.staff_id),
            Some("N001".into()),
            "a lapsed session gives way"
        );
        let mut s = Sessions::default();
        s.sign_in(member("N001", t0()), LOCK_AFTER).unwrap();
        s.lock();
        let back = s.sign_in(member("N001", t0()), LOCK_AFTER).unwrap();
        assert!(back.is_some_and(|b| b.locked), "her own PIN unlocks");
        assert_eq!(state_name(&s, t0()), "active");
        assert!(
            s.sign_in(member("N002", t0()), LOCK_AFTER).is_ok(),
            "an active session may be handed over"
        );
    }
}
