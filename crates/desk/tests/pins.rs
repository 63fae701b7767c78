//! PIN attempts on a real store file: the lockout is in the store, so it
//! survives a restart; attempts in parallel (from two app instances on one file,
//! twenty threads) never check more PINs than the free attempts; and a locked
//! session stays its member's. The nurse's verifier is a real one at today's
//! cost (the demo's is cheap: its PIN is public), so the checks are as slow as
//! on a ward.

use std::sync::Barrier;

use clinic_desk_core::{DEMO_PIN, DEMO_SEED, Desk, ErrorCode, SessionStateDto};
use clinic_domain::pin::{self, FREE_ATTEMPTS, PinPolicy};

const NURSE: &str = "N001";
const PIN: &str = "402817";
const WRONG: &str = "000000";

/// The demo clinic on `path`, the nurse with a real PIN at today's cost.
fn demo_with_a_real_pin(path: &std::path::Path) -> Desk {
    let desk = Desk::open(path).unwrap();
    desk.load_demo(DEMO_SEED, None).unwrap();
    let verifier = pin::verifier(PIN, PinPolicy::Clinic).unwrap();
    desk.database()
        .write(|c| {
            c.execute(
                "UPDATE staff SET pin_verifier = ?1 WHERE id = ?2",
                [verifier.as_str(), NURSE],
            )
        })
        .unwrap();
    desk
}

fn failures_audited(desk: &Desk, staff: &str) -> usize {
    desk.database()
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM audit_log WHERE actor = ?1 AND action = 'sign_in_failed'",
                [staff],
                |r| r.get::<_, i64>(0),
            )
        })
        .unwrap() as usize
}

#[test]
fn the_lockout_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.sqlite3");
    {
        let desk = demo_with_a_real_pin(&path);
        for _ in 1..FREE_ATTEMPTS {
            assert_eq!(
                desk.sign_in(NURSE, WRONG).unwrap_err().code,
                ErrorCode::WrongPin
            );
        }
        assert_eq!(
            desk.sign_in(NURSE, WRONG).unwrap_err().code,
            ErrorCode::PinAttemptsExceeded,
            "the last free attempt starts the wait"
        );
    }
    let reopened = Desk::open(&path).unwrap();
    let refused = reopened.sign_in(NURSE, PIN).unwrap_err();
    assert_eq!(
        refused.code,
        ErrorCode::PinAttemptsExceeded,
        "still waiting after the restart, even with the right PIN"
    );
    assert!(refused.message.contains(" s"), "{}", refused.message);
    assert_eq!(failures_audited(&reopened, NURSE), FREE_ATTEMPTS as usize);
    assert!(
        reopened.sign_in("N002", DEMO_PIN).is_ok(),
        "a colleague is not locked out"
    );
}

#[test]
fn twenty_parallel_wrong_attempts_check_no_more_than_the_free_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.sqlite3");
    let first = demo_with_a_real_pin(&path);
    // Two instances on one file: two writer connections, so the count's
    // transaction, not a mutex in one process, is what keeps them apart.
    let second = Desk::open(&path).unwrap();
    let start = Barrier::new(20);
    let codes: Vec<ErrorCode> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let desk = if i % 2 == 0 { &first } else { &second };
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    desk.sign_in(NURSE, WRONG).unwrap_err().code
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let wrong = codes.iter().filter(|c| **c == ErrorCode::WrongPin).count();
    let waiting = codes
        .iter()
        .filter(|c| **c == ErrorCode::PinAttemptsExceeded)
        .count();
    assert_eq!(
        (wrong, waiting),
        (FREE_ATTEMPTS as usize - 1, 21 - FREE_ATTEMPTS as usize),
        "{codes:?}"
    );
    assert_eq!(
        failures_audited(&first, NURSE),
        FREE_ATTEMPTS as usize,
        "exactly the free attempts were checked"
    );
    assert_eq!(
        second.sign_in(NURSE, PIN).unwrap_err().code,
        ErrorCode::PinAttemptsExceeded
    );
}

#[test]
fn a_locked_session_is_not_signed_out_without_its_members_pin() {
    let dir = tempfile::tempdir().unwrap();
    let desk = demo_with_a_real_pin(&dir.path().join("desk.sqlite3"));
    let signed_in = desk.sign_in(NURSE, PIN).unwrap();
    // The UI covers the screen when Rust said the session would lock: the whole
    // idle allowance ahead of a fresh sign-in (less the time the PIN took).
    let allowance = u64::from(signed_in.lock_after_minutes) * 60_000;
    let locks_in = u64::from(signed_in.locks_in_ms.expect("an active session locks"));
    assert!(
        (allowance - 5_000..=allowance).contains(&locks_in),
        "locks in {locks_in} ms of {allowance}"
    );
    let locked = desk.lock_session().unwrap();
    assert_eq!(
        (locked.state, locked.locks_in_ms),
        (SessionStateDto::Locked, None)
    );

    assert_eq!(
        desk.sign_in("N002", DEMO_PIN).unwrap_err().code,
        ErrorCode::SessionHeld,
        "a colleague does not sign in over her"
    );
    assert_eq!(desk.sign_out().unwrap_err().code, ErrorCode::SessionHeld);
    let still = desk.staff_session(true).unwrap();
    assert_eq!(
        (still.state, still.staff_id.as_deref()),
        (SessionStateDto::Locked, Some(NURSE))
    );
    assert_eq!(failures_audited(&desk, "N002"), 0, "no PIN was checked");

    let unlocked = desk.sign_in(NURSE, PIN).unwrap();
    assert_eq!(unlocked.state, SessionStateDto::Active);
    assert_eq!(desk.sign_out().unwrap().state, SessionStateDto::SignedOut);
    let trail: Vec<String> = desk
        .database()
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT actor || ' ' || action FROM audit_log ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<Vec<String>, _>>()
        })
        .unwrap();
    assert_eq!(
        trail,
        ["N001 signed_in", "N001 signed_in", "N001 signed_out"],
        "she signed herself out, once"
    );
}
