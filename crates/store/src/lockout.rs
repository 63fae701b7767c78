//! Wrong PINs per staff member (`pin_attempts`), kept in the store so a restart
//! does not forget them. The waits are the domain's
//! ([`clinic_domain::pin::wait_after_failures`]).
//!
//! [`begin`] checks the wait and counts the attempt as a wrong PIN in one
//! `IMMEDIATE` transaction, *before* the PIN is checked: attempts in parallel (or
//! from another connection to the same file) each see the ones before them, so no
//! more than the free attempts ever reach the slow check, and an attempt whose
//! check never finishes (the app killed mid-hash) still counts. A right PIN takes
//! the count back ([`succeeded`]). The check itself (argon2id, ≥ 250 ms) runs
//! after the commit, so the writer is not held through it.

use clinic_domain::pin::wait_after_failures;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Too many wrong PINs: nothing is checked for `seconds` more.
    Wait { seconds: i64 },
    /// Check the PIN. If it is wrong, it was the `failures`th in a row, and
    /// `wait_seconds` is the wait it started (if any).
    Go {
        failures: u32,
        wait_seconds: Option<i64>,
    },
}

fn current(c: &Connection, staff_id: &str) -> Result<(u32, Option<i64>), StoreError> {
    Ok(
        c.prepare_cached("SELECT failures, wait_until FROM pin_attempts WHERE staff_id = ?1")?
            .query_row([staff_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, None)),
    )
}

/// Seconds `staff_id` must still wait at `now` (Unix seconds) before trying a PIN.
pub fn wait(c: &Connection, staff_id: &str, now: i64) -> Result<Option<i64>, StoreError> {
    let (_, until) = current(c, staff_id)?;
    Ok(until.filter(|u| *u > now).map(|u| u - now))
}

/// One sign-in attempt by `staff_id` at `now` (Unix seconds): refused while she
/// must wait, otherwise counted as wrong until [`succeeded`] says otherwise.
pub fn begin(c: &mut Connection, staff_id: &str, now: i64) -> Result<Attempt, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (failures, until) = current(&tx, staff_id)?;
    if let Some(until) = until.filter(|u| *u > now) {
        return Ok(Attempt::Wait {
            seconds: until - now,
        });
    }
    let failures = failures.saturating_add(1);
    let wait_seconds = wait_after_failures(failures);
    tx.execute(
        "INSERT INTO pin_attempts (staff_id, failures, wait_until) VALUES (?1, ?2, ?3)
         ON CONFLICT (staff_id) DO UPDATE SET failures = excluded.failures,
             wait_until = excluded.wait_until",
        rusqlite::params![staff_id, failures, wait_seconds.map(|s| now + s)],
    )?;
    tx.commit()?;
    Ok(Attempt::Go {
        failures,
        wait_seconds,
    })
}

/// `staff_id` entered her PIN right: her count starts again.
pub fn succeeded(c: &Connection, staff_id: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM pin_attempts WHERE staff_id = ?1", [staff_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clinic_domain::pin::{FIRST_WAIT_SECONDS, FREE_ATTEMPTS};

    use super::*;
    use crate::Database;

    #[test]
    fn attempts_are_counted_before_the_check_and_waits_escalate() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("desk.db")).unwrap();
        let t0 = 1_800_000_000;
        for n in 1..FREE_ATTEMPTS {
            assert_eq!(
                db.write(|c| begin(c, "N001", t0)).unwrap(),
                Attempt::Go {
                    failures: n,
                    wait_seconds: None
                }
            );
        }
        assert_eq!(
            db.write(|c| begin(c, "N001", t0)).unwrap(),
            Attempt::Go {
                failures: FREE_ATTEMPTS,
                wait_seconds: Some(FIRST_WAIT_SECONDS)
            }
        );
        assert_eq!(
            db.write(|c| begin(c, "N001", t0 + 10)).unwrap(),
            Attempt::Wait {
                seconds: FIRST_WAIT_SECONDS - 10
            }
        );
        assert_eq!(
            db.read(|c| wait(c, "N002", t0)).unwrap(),
            None,
            "per member"
        );
        let later = t0 + FIRST_WAIT_SECONDS;
        assert_eq!(
            db.write(|c| begin(c, "N001", later)).unwrap(),
            Attempt::Go {
                failures: FREE_ATTEMPTS + 1,
                wait_seconds: Some(2 * FIRST_WAIT_SECONDS)
            },
            "one more try after the wait, and the next wait is longer"
        );
        db.write(|c| succeeded(c, "N001")).unwrap();
        assert_eq!(db.read(|c| wait(c, "N001", later)).unwrap(), None);
        assert_eq!(
            db.write(|c| begin(c, "N001", later)).unwrap(),
            Attempt::Go {
                failures: 1,
                wait_seconds: None
            }
        );
    }
}
