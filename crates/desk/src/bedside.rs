//! The bedside: sign in, record an assessment, review it, correct it, reassess,
//! export. Every rule is the domain's; this file fetches what the rules need from
//! the store, applies them, and writes in one transaction.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use clinic_domain::assessment::{
    self, CorrectionTarget, DEFAULT_BACKDATE_WINDOW_MINUTES, DEFAULT_LOCK_AFTER_MINUTES,
    DEFAULT_REASSESS_INTERVAL_MINUTES, FollowUpTarget, TimeWindow,
};
use clinic_domain::roles::{self, Access, Actor, ClinicAccess};
use clinic_domain::{DomainError, EntryClock, PainReport, PatientId, corrections};
use clinic_store::audit::{self, AuditAction, NewAuditEntry};
use clinic_store::lockout::{self, Attempt};
use clinic_store::outbox::{self, NewReport, ReportEntry};
use clinic_store::{Connection, StoreError, patients, settings, staff};
use serde::Serialize;

use crate::dto::{instant, rfc3339};
use crate::session::{SessionState, SignedIn, verify_pin};
use crate::{
    ApiError, AssessmentInput, AuditEntryDto, CorrectionInput, Desk, ErrorCode, ExportDto,
    PainReportDto, PendingReassessmentDto, SessionDto, SessionStateDto, StaffDto, device_id, fhir,
};

/// Most reassessments listed (a ward's worth).
const PENDING_REASSESSMENTS_LIMIT: usize = 200;

/// The clinic's bedside settings, with the defaults a fresh device uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BedsideRules {
    pub backdate_window_minutes: u32,
    pub reassess_interval_minutes: u32,
    pub lock_after_minutes: u32,
}

impl BedsideRules {
    fn read(c: &Connection) -> Result<Self, StoreError> {
        let minutes = |key: &str, default: u32| -> Result<u32, StoreError> {
            Ok(settings::get(c, key)?
                .and_then(|v| v.trim().parse().ok())
                .filter(|m| *m > 0)
                .unwrap_or(default))
        };
        Ok(Self {
            backdate_window_minutes: minutes(
                settings::BACKDATE_WINDOW_MINUTES,
                DEFAULT_BACKDATE_WINDOW_MINUTES,
            )?,
            reassess_interval_minutes: minutes(
                settings::REASSESS_INTERVAL_MINUTES,
                DEFAULT_REASSESS_INTERVAL_MINUTES,
            )?,
            lock_after_minutes: minutes(settings::LOCK_AFTER_MINUTES, DEFAULT_LOCK_AFTER_MINUTES)?,
        })
    }
    fn lock_after(self) -> Duration {
        Duration::minutes(i64::from(self.lock_after_minutes))
    }
}

fn domain_error(e: DomainError) -> ApiError {
    let code = match &e {
        DomainError::ScoreOutOfRange { .. } => ErrorCode::InvalidScore,
        DomainError::UnknownScale(_) => ErrorCode::InvalidScale,
        DomainError::AssessmentInFuture => ErrorCode::AssessmentInFuture,
        DomainError::AssessmentTooOld { .. } => ErrorCode::AssessmentTooOld,
        DomainError::InvalidTime(_) => ErrorCode::InvalidAssessmentTime,
        DomainError::ReasonRequired => ErrorCode::InvalidCorrectionReason,
        DomainError::TextTooLong {
            field: "reason", ..
        }
        | DomainError::InvisibleCharacter { field: "reason" } => ErrorCode::InvalidCorrectionReason,
        DomainError::TextTooLong { .. }
        | DomainError::InvisibleCharacter { .. }
        | DomainError::UnknownActivity(_) => ErrorCode::InvalidAssessmentDetails,
        // A report replaced meanwhile (a correction of it, or a resolution that
        // settled it, arrived first): she reloads and acts on what is current.
        DomainError::AlreadySuperseded => ErrorCode::ReportAlreadyCorrected,
        // A resolution that does not settle the record's conflict as it is now
        // (another correction arrived, or it names the wrong report).
        DomainError::InvalidResolution => ErrorCode::InvalidResolution,
        DomainError::InvalidFollowUp | DomainError::CorrectionForOtherPatient => {
            ErrorCode::InvalidFollowUp
        }
        DomainError::EmptyId | DomainError::IdTooLong { .. } | DomainError::IdInvalidCharacter => {
            ErrorCode::InvalidPatientId
        }
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

/// The row to write for a checked report: by `who` on `device`, due for
/// reassessment when it records an intervention.
fn new_report(
    report: PainReport,
    follows_up: Option<String>,
    who: &SignedIn,
    device: &str,
    rules: BedsideRules,
) -> NewReport {
    NewReport {
        reassess_due_at: assessment::reassessment_due(
            report.assessed_at,
            report.details.intervention.as_deref(),
            rules.reassess_interval_minutes,
        ),
        follows_up,
        details: report.details,
        ..NewReport::score(
            report.patient_id,
            report.score,
            report.assessed_at,
            &who.staff_id,
            device,
        )
    }
}

/// A stored row no rule would have written: the store's failure, shown as such.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptRow(what.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::ReportNotFound, format!("no report with ID {id}"))
}

impl Desk {
    pub(crate) fn rules(&self) -> Result<BedsideRules, ApiError> {
        Ok(self.db.read(BedsideRules::read)?)
    }

    /// The rules and the entry clock a save is checked by, read on the writer.
    /// The save writes next on that connection, whose page cache stays warm; a
    /// reader's cache was dropped by the last commit (WAL), and in the encrypted
    /// store every page it reads again is decrypted again (`benches/save.rs`).
    fn save_rules(&self, now: DateTime<Utc>) -> Result<(BedsideRules, EntryClock), ApiError> {
        let (rules, zone) = self
            .db
            .write(|c| Ok::<_, StoreError>((BedsideRules::read(c)?, settings::clinic_zone(c)?)))?;
        let clock = EntryClock {
            zone,
            window: TimeWindow::minutes(rules.backdate_window_minutes),
            now,
        };
        Ok((rules, clock))
    }

    fn session_dto(&self, now: DateTime<Utc>) -> Result<SessionDto, ApiError> {
        let rules = self.rules()?;
        let clinic = self.clinic_access()?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let state = sessions.state(now, rules.lock_after());
        let locks_in_ms = match &state {
            SessionState::Active(s) => {
                let left = (s.last_active + rules.lock_after() - now).num_milliseconds();
                Some(u32::try_from(left.max(0)).unwrap_or(u32::MAX))
            }
            _ => None,
        };
        let (dto_state, who) = match &state {
            SessionState::SignedOut => (SessionStateDto::SignedOut, None),
            SessionState::Active(s) => (SessionStateDto::Active, Some(*s)),
            SessionState::Locked(s) => (SessionStateDto::Locked, Some(*s)),
        };
        Ok(SessionDto {
            state: dto_state,
            staff_id: who.map(|s| s.staff_id.clone()),
            staff_name: who.map(|s| s.name.clone()),
            role: who.map(|s| s.role.as_str().to_owned()),
            allowed: roles::allowed(state.actor(), clinic),
            lock_after_minutes: rules.lock_after_minutes,
            locks_in_ms,
            backdate_window_minutes: rules.backdate_window_minutes,
            reassess_interval_minutes: rules.reassess_interval_minutes,
            time_zone: self.zone()?.name().to_owned(),
        })
    }

    /// The clinic's settings the role table depends on.
    fn clinic_access(&self) -> Result<ClinicAccess, ApiError> {
        let open = self
            .db
            .read(|c| settings::get(c, settings::OPEN_SCHEDULE_WITHOUT_SIGN_IN))?;
        Ok(ClinicAccess {
            open_schedule_without_sign_in: open.is_some_and(|v| settings::is_on(&v)),
        })
    }

    /// Whether whoever is at the device now may do what `access` names, by the
    /// role table (`clinic_domain::roles`): nobody signed in and a locked session
    /// may do only what needs no one. Every command asks this first (`ipc.rs`).
    pub fn authorize(&self, access: Access) -> Result<(), ApiError> {
        if access == Access::Open {
            return Ok(());
        }
        let now = Utc::now();
        let rules = self.rules()?;
        let clinic = self.clinic_access()?;
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let state = sessions.state(now, rules.lock_after());
        if roles::may(state.actor(), access, clinic) {
            return Ok(());
        }
        Err(match state {
            SessionState::SignedOut => ApiError::new(
                ErrorCode::NotSignedIn,
                "sign in to see the clinic's patients",
            ),
            SessionState::Locked(_) => ApiError::new(
                ErrorCode::SessionLocked,
                "the session is locked; enter the PIN",
            ),
            SessionState::Active(s) => ApiError::new(
                ErrorCode::NotPermitted,
                format!("a {} may not do this ({access:?})", s.role.as_str()),
            ),
        })
    }

    /// Who is signed in. `active` says the user just did something (the UI calls it
    /// on input), which keeps an unlocked session from locking.
    pub fn staff_session(&self, active: bool) -> Result<SessionDto, ApiError> {
        let now = Utc::now();
        if active {
            let lock_after = self.rules()?.lock_after();
            self.sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .touch(now, lock_after);
        }
        self.session_dto(now)
    }

    /// Locks the session now (the member steps away); her PIN unlocks it.
    pub fn lock_session(&self) -> Result<SessionDto, ApiError> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lock();
        self.session_dto(Utc::now())
    }

    /// The staff who may sign in on this device.
    pub fn staff(&self) -> Result<Vec<StaffDto>, ApiError> {
        Ok(self
            .db
            .read(staff::active)?
            .into_iter()
            .map(|s| StaffDto {
                can_sign_in: s.pin_verifier.is_some(),
                id: s.id,
                name: s.name,
                role: s.role.as_str().to_owned(),
                department: s.department,
            })
            .collect())
    }

    /// Signs a member in with their PIN (also unlocks her locked session, or
    /// switches from an active one; never over another member's locked session).
    /// Every attempt, right or wrong, goes in the audit trail; wrong ones are
    /// counted in the store before the PIN is checked (`clinic_store::lockout`).
    pub fn sign_in(&self, staff_id: &str, pin: &str) -> Result<SessionDto, ApiError> {
        let now = Utc::now();
        let lock_after = self.rules()?.lock_after();
        let member = self
            .db
            .read(|c| staff::get(c, staff_id))?
            .filter(|s| s.active)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownStaff,
                    "no active staff member with that ID",
                )
            })?;
        let Some(verifier) = member.pin_verifier.clone() else {
            return Err(ApiError::new(
                ErrorCode::PinNotSet,
                "the clinic has not set a PIN for this member",
            ));
        };
        let held = || {
            ApiError::new(
                ErrorCode::SessionHeld,
                "another member's session is locked here; her PIN unlocks it",
            )
        };
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check_sign_in(&member.id, now, lock_after)
            .map_err(|_| held())?;
        let wait_seconds = match self
            .db
            .write(|c| lockout::begin(c, &member.id, now.timestamp()))?
        {
            Attempt::Wait { seconds } => {
                return Err(ApiError::new(
                    ErrorCode::PinAttemptsExceeded,
                    format!("too many wrong PINs; try again in {seconds} s"),
                ));
            }
            Attempt::Go { wait_seconds, .. } => wait_seconds,
        };
        // Slow on purpose (argon2id); never under the sessions lock or in a transaction.
        let ok = verify_pin(pin, &verifier);
        let audit_entry = |c: &Connection, actor: &str, action: AuditAction| {
            let device = device_id(c)?;
            audit::append(
                c,
                &NewAuditEntry {
                    at: now.timestamp(),
                    actor,
                    device_id: &device,
                    action,
                    report_id: None,
                    detail: None,
                },
            )
        };
        if !ok {
            self.db
                .write(|c| audit_entry(c, &member.id, AuditAction::SignInFailed))?;
            return Err(match wait_seconds {
                Some(wait) => ApiError::new(
                    ErrorCode::PinAttemptsExceeded,
                    format!("too many wrong PINs; try again in {wait} s"),
                ),
                None => ApiError::new(ErrorCode::WrongPin, "wrong PIN"),
            });
        }
        let previous = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sign_in(
                SignedIn {
                    staff_id: member.id.clone(),
                    name: member.name.clone(),
                    role: member.role,
                    last_active: now,
                    locked: false,
                },
                lock_after,
            )
            .map_err(|_| held())?;
        self.db.write(|c| -> Result<(), StoreError> {
            let tx = c.transaction()?;
            lockout::succeeded(&tx, &member.id)?;
            if let Some(p) = previous.filter(|p| p.staff_id != member.id) {
                audit_entry(&tx, &p.staff_id, AuditAction::SignedOut)?;
            }
            audit_entry(&tx, &member.id, AuditAction::SignedIn)?;
            Ok(tx.commit()?)
        })?;
        tracing::info!(staff = %member.id, "signed in");
        self.session_dto(now)
    }

    /// Signs the member out; a locked session needs her PIN first (`session_held`).
    pub fn sign_out(&self) -> Result<SessionDto, ApiError> {
        let now = Utc::now();
        let lock_after = self.rules()?.lock_after();
        let was = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sign_out(now, lock_after)
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::SessionHeld,
                    "the session is locked; its member's PIN unlocks it before signing out",
                )
            })?;
        if let Some(was) = was {
            self.db.write(|c| {
                let device = device_id(c)?;
                audit::append(
                    c,
                    &NewAuditEntry {
                        at: now.timestamp(),
                        actor: &was.staff_id,
                        device_id: &device,
                        action: AuditAction::SignedOut,
                        report_id: None,
                        detail: None,
                    },
                )
            })?;
        }
        self.session_dto(now)
    }

    /// The member acting now: signed in, not locked, and a role that may do what
    /// `access` names (the role table). Acting keeps the session open.
    pub(crate) fn acting(
        &self,
        now: DateTime<Utc>,
        rules: BedsideRules,
        access: Access,
    ) -> Result<SignedIn, ApiError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let who = match sessions.state(now, rules.lock_after()) {
            SessionState::SignedOut => {
                return Err(ApiError::new(
                    ErrorCode::NotSignedIn,
                    "sign in to record or change assessments",
                ));
            }
            SessionState::Locked(_) => {
                return Err(ApiError::new(
                    ErrorCode::SessionLocked,
                    "the session is locked; enter the PIN",
                ));
            }
            SessionState::Active(s) => s.clone(),
        };
        if !roles::may(Actor::Staff(who.role), access, ClinicAccess::default()) {
            return Err(ApiError::new(
                ErrorCode::NotPermitted,
                format!("a {} may not do this ({access:?})", who.role.as_str()),
            ));
        }
        sessions.touch(now, rules.lock_after());
        Ok(who)
    }

    /// Saves an assessment at once (with its outbox entry and audit row, in one
    /// transaction) as the signed-in member, and asks sync to deliver it.
    pub fn record_assessment(&self, input: &AssessmentInput) -> Result<PainReportDto, ApiError> {
        let now = Utc::now();
        let patient = PatientId::parse(&input.patient_id)
            .map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        let (rules, clock) = self.save_rules(now)?;
        let report = input
            .values
            .check(patient, clock, None)
            .map_err(domain_error)?;
        let who = self.acting(now, rules, Access::RecordPain)?;
        // The saved report is read back on the writer that saved it: its page
        // cache is warm, while a reader's was dropped by this very commit (WAL)
        // and would decrypt every page again (benches/save.rs).
        let saved = self.db.write(|c| -> Result<PainReportDto, ApiError> {
            let patient = &report.patient_id;
            if patients::get(c, patient)?.is_none() {
                return Err(ApiError::new(
                    ErrorCode::PatientNotFound,
                    format!("no patient with ID {patient}"),
                ));
            }
            if let Some(first) = &input.follows_up {
                let ok = match outbox::get(c, first)? {
                    Some(t) => assessment::check_follow_up(
                        FollowUpTarget {
                            patient_id: &t.patient_id,
                            assessed_at: instant(t.assessed_at)?,
                            had_intervention: t.details.intervention.is_some(),
                            superseded: t.superseded_by.is_some(),
                        },
                        patient.as_str(),
                        report.assessed_at,
                    )
                    .is_ok(),
                    None => false,
                };
                if !ok {
                    return Err(domain_error(DomainError::InvalidFollowUp));
                }
            }
            let row = new_report(
                report.clone(),
                input.follows_up.clone(),
                &who,
                &device_id(c)?,
                rules,
            );
            let id = outbox::record_report(c, &row, now)?;
            Self::report_on(c, &id)
        })?;
        self.report_queued();
        Ok(saved)
    }

    /// Replaces a live record by a corrected one that names it and `reason`. The
    /// original is kept, unchanged, shown as superseded; both are synced. In a
    /// conflicting record any live report may be corrected (it stays conflicting).
    pub fn correct_report(
        &self,
        report_id: &str,
        input: &CorrectionInput,
    ) -> Result<PainReportDto, ApiError> {
        self.write_correction(report_id, input, false)
    }

    /// Settles a conflicting record (ARCHITECTURE.md, "Concurrent corrections"): a
    /// correction of its shown current report (`report_id`) that names every other
    /// live report in `resolves`, with a reason. Any signed-in member may.
    pub fn resolve_conflict(
        &self,
        report_id: &str,
        input: &CorrectionInput,
    ) -> Result<PainReportDto, ApiError> {
        self.write_correction(report_id, input, true)
    }

    fn write_correction(
        &self,
        report_id: &str,
        input: &CorrectionInput,
        resolving: bool,
    ) -> Result<PainReportDto, ApiError> {
        let now = Utc::now();
        let (rules, clock) = self.save_rules(now)?;
        // On the writer too, for the same reason as the rules.
        let old = self
            .db
            .write(|c| outbox::get(c, report_id))?
            .ok_or_else(|| not_found(report_id))?;
        assessment::check_correction(
            CorrectionTarget {
                patient_id: &old.patient_id,
                superseded: old.superseded_by.is_some(),
            },
            &old.patient_id,
        )
        .map_err(domain_error)?;
        let resolves: Vec<String> = match (&old.standing, resolving) {
            (_, false) => Vec::new(),
            (Some(standing), true) => {
                let others = standing.record_live.get(1..).unwrap_or_default().to_vec();
                corrections::check_resolution(standing, &others).map_err(domain_error)?;
                others
            }
            (None, true) => return Err(domain_error(DomainError::InvalidResolution)),
        };
        let reason = assessment::correction_reason(&input.reason).map_err(domain_error)?;
        let patient = PatientId::parse(&old.patient_id)
            .map_err(|e| corrupt(format!("report {report_id}: {e}")))?;
        let report = input
            .values
            .check(patient, clock, Some(instant(old.assessed_at)?))
            .map_err(domain_error)?;
        let who = self.acting(now, rules, Access::RecordPain)?;
        // Read back on the writer, as a new assessment is (`record_assessment`).
        let saved = self.db.write(|c| {
            let row = new_report(
                report.clone(),
                old.follows_up.clone(),
                &who,
                &device_id(c)?,
                rules,
            );
            let id = outbox::resolve(c, report_id, &row, &reason, &resolves, now)?;
            let id = id.ok_or_else(|| {
                domain_error(if resolving {
                    DomainError::InvalidResolution
                } else {
                    DomainError::AlreadySuperseded
                })
            })?;
            Self::report_on(c, &id)
        })?;
        self.report_queued();
        Ok(saved)
    }

    /// Queues a refused report again (same ID, same content) once whatever the
    /// server objected to has been put right. Attributed to the signed-in member.
    pub fn retry_rejected_report(&self, report_id: &str) -> Result<PainReportDto, ApiError> {
        let now = Utc::now();
        let current = self
            .db
            .read(|c| outbox::get(c, report_id))?
            .ok_or_else(|| not_found(report_id))?;
        if current.state != outbox::OutboxState::Rejected {
            return Err(ApiError::new(
                ErrorCode::ReportNotRejected,
                "only a report the server refused can be retried",
            ));
        }
        let who = self.acting(now, self.rules()?, Access::RecordPain)?;
        self.db.write(|c| {
            let tx = c.transaction()?;
            if outbox::requeue_rejected(&tx, report_id)? {
                let device = device_id(&tx)?;
                audit::append(
                    &tx,
                    &NewAuditEntry {
                        at: now.timestamp(),
                        actor: &who.staff_id,
                        device_id: &device,
                        action: AuditAction::Retried,
                        report_id: Some(report_id),
                        detail: None,
                    },
                )?;
            }
            tx.commit()?;
            Ok::<_, StoreError>(())
        })?;
        self.report_queued();
        self.report(report_id)
    }

    fn report_queued(&self) {
        if let Some(sync) = self.sync.get() {
            sync.report_queued();
        }
    }

    fn staff_names(c: &Connection) -> Result<HashMap<String, String>, StoreError> {
        let mut stmt = c.prepare_cached("SELECT id, name FROM staff")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn dto(
        e: &ReportEntry,
        names: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<PainReportDto, ApiError> {
        Ok(PainReportDto::new(
            e,
            names.get(&e.recorded_by).cloned(),
            now,
        )?)
    }

    pub(crate) fn report(&self, id: &str) -> Result<PainReportDto, ApiError> {
        self.db.read(|c| Self::report_on(c, id))
    }

    fn report_on(c: &Connection, id: &str) -> Result<PainReportDto, ApiError> {
        let (entry, names) = (outbox::get(c, id)?, Self::staff_names(c)?);
        Self::dto(&entry.ok_or_else(|| not_found(id))?, &names, Utc::now())
    }

    /// A patient's assessments, newest first, superseded ones included (marked).
    pub fn patient_reports(&self, patient_id: &str) -> Result<Vec<PainReportDto>, ApiError> {
        let patient = PatientId::parse(patient_id)
            .map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        let (entries, names) = self.db.read(|c| {
            Ok::<_, ApiError>((
                outbox::for_patient(c, &patient, crate::PATIENT_REPORTS_LIMIT)?,
                Self::staff_names(c)?,
            ))
        })?;
        let now = Utc::now();
        entries.iter().map(|e| Self::dto(e, &names, now)).collect()
    }

    /// Reassessments the clinic owes, recorded on any device, soonest due first
    /// (overdue ones lead); each says who recorded the intervention and where.
    pub fn pending_reassessments(&self) -> Result<Vec<PendingReassessmentDto>, ApiError> {
        // A reader, not the writer: the UI asks every 30 s and must not queue behind a
        // sync batch.
        let (pending, names) = self.db.read(|c| {
            Ok::<_, ApiError>((
                outbox::pending_reassessments(c, PENDING_REASSESSMENTS_LIMIT)?,
                Self::staff_names(c)?,
            ))
        })?;
        let now = Utc::now();
        pending
            .iter()
            .map(|(e, name)| {
                Ok(PendingReassessmentDto {
                    report: Self::dto(e, &names, now)?,
                    patient_name: name.clone(),
                })
            })
            .collect()
    }

    /// The audit trail of one record, oldest first.
    pub fn report_history(&self, report_id: &str) -> Result<Vec<AuditEntryDto>, ApiError> {
        let (entries, names) = self.db.read(|c| {
            Ok::<_, ApiError>((audit::for_report(c, report_id)?, Self::staff_names(c)?))
        })?;
        entries
            .into_iter()
            .map(|e| {
                Ok(AuditEntryDto {
                    at: rfc3339(e.at)?,
                    actor_name: names.get(&e.actor).cloned(),
                    actor: e.actor,
                    device_id: e.device_id,
                    action: e.action.as_str().to_owned(),
                    detail: e.detail,
                })
            })
            .collect()
    }

    /// A FHIR R4 Bundle of Observations: one patient's assessments, or every one
    /// on this device when `patient_id` is `None`.
    pub fn fhir_bundle(
        &self,
        patient_id: Option<&str>,
    ) -> Result<(serde_json::Value, usize), ApiError> {
        let zone = self.zone()?;
        let patient = patient_id
            .map(|p| {
                PatientId::parse(p)
                    .map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))
            })
            .transpose()?;
        let (entries, names) = self.db.read(|c| {
            let entries = match &patient {
                Some(p) => outbox::for_patient(c, p, usize::MAX >> 1)?,
                None => outbox::all(c)?,
            };
            Ok::<_, ApiError>((entries, Self::staff_names(c)?))
        })?;
        let observations = entries
            .iter()
            .map(|e| fhir::observation(e, names.get(&e.recorded_by).map(String::as_str), zone))
            .collect::<Result<Vec<_>, _>>()?;
        let n = observations.len();
        Ok((fhir::bundle(observations, Utc::now(), zone), n))
    }

    /// Writes [`Desk::fhir_bundle`] to `exports/` beside the database, readable by
    /// this user only (it is health data), and notes the export in the audit trail.
    pub fn export_fhir(&self, patient_id: Option<&str>) -> Result<ExportDto, ApiError> {
        let now = Utc::now();
        if let Some(p) = patient_id {
            PatientId::parse(p)
                .map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        }
        let who = self.acting(now, self.rules()?, Access::ReadPain)?;
        let (bundle, n) = self.fhir_bundle(patient_id)?;
        let dir = self.exports_dir();
        let path = dir.join(format!(
            "fhir-{}-{}.json",
            patient_id.unwrap_or("all"),
            now.format("%Y%m%dT%H%M%SZ")
        ));
        write_private(&dir, &path, &export_bytes(&bundle)?).map_err(|e| {
            tracing::error!(error = %e, "export failed");
            ApiError::new(
                ErrorCode::ExportFailed,
                format!("could not write the export: {e}"),
            )
        })?;
        let detail = serde_json::json!({ "scope": patient_id.unwrap_or("all"), "observations": n })
            .to_string();
        self.db.write(|c| {
            let device = device_id(c)?;
            audit::append(
                c,
                &NewAuditEntry {
                    at: now.timestamp(),
                    actor: &who.staff_id,
                    device_id: &device,
                    action: AuditAction::Exported,
                    report_id: None,
                    detail: Some(&detail),
                },
            )
        })?;
        Ok(ExportDto {
            path: path.display().to_string(),
            observations: n.min(u32::MAX as usize) as u32,
        })
    }

    fn exports_dir(&self) -> PathBuf {
        self.db
            .path()
            .parent()
            .map(|p| p.join("exports"))
            .unwrap_or_else(|| PathBuf::from("exports"))
    }
}

/// The export file's bytes; a bundle that cannot be written out is an export that
/// failed, never an empty file reported as written.
fn export_bytes(bundle: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec_pretty(bundle).map_err(|e| {
        tracing::error!(error = %e, "export failed");
        ApiError::new(
            ErrorCode::ExportFailed,
            format!("could not encode the export: {e}"),
        )
    })
}

fn write_private(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use serde::ser::{Error, Serializer};

    use super::*;

    struct Unwritable;

    impl Serialize for Unwritable {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom("no JSON for this"))
        }
    }

    #[test]
    fn an_export_that_cannot_be_encoded_fails_instead_of_writing_nothing() {
        let err = export_bytes(&Unwritable).unwrap_err();
        assert_eq!(err.code, ErrorCode::ExportFailed);
        assert!(err.message.contains("no JSON for this"), "{err}");
        assert!(export_bytes(&serde_json::json!({"resourceType": "Bundle"})).is_ok());
    }
}
