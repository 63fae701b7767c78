// Generated from crates/desk by `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings`. Do not edit.

export type ErrorCode = "query_too_long" | "invalid_patient_id" | "invalid_doctor_id" | "invalid_date" | "patient_not_found" | "invalid_score" | "invalid_scale" | "invalid_assessment_time" | "assessment_in_future" | "assessment_too_old" | "invalid_assessment_details" | "invalid_follow_up" | "report_already_corrected" | "invalid_resolution" | "not_signed_in" | "session_locked" | "unknown_staff" | "pin_not_set" | "wrong_pin" | "pin_attempts_exceeded" | "export_failed" | "report_not_found" | "report_not_rejected" | "invalid_correction_reason" | "sync_not_configured" | "database_too_new" | "storage_failed" | "store_key_missing" | "store_key_wrong" | "internal" | "invalid_profile" | "other_clinic_data" | "support_bundle_failed" | "not_permitted" | "session_held";

export type ApiError = { code: ErrorCode, message: string, };

export type AppInfo = { version: string, clinicId: string | null, clinicName: string | null, 
/**
 * The clinic profile's UI language (`zh-CN` or `en`), the default until a user picks one.
 */
language: string | null, timeZone: string, 
/**
 * The clinic's date now, `YYYY-MM-DD`.
 */
today: string, databasePath: string, schemaVersion: number, };

export type Sex = "female" | "male" | "unknown";

export type MatchKind = "id_exact" | "id_prefix" | "name_exact" | "name_prefix" | "initials" | "pinyin" | "name_substring" | "phone_tail";

export type PatientSummary = { id: string, name: string, sex: Sex, age: number, isInsured: boolean, 
/**
 * Last four digits only: enough to confirm identity over the counter.
 */
phoneTail: string | null, matched: MatchKind, };

export type PatientSearch = { patients: Array<PatientSummary>, 
/**
 * More patients matched than were returned: the user should refine the query.
 */
truncated: boolean, };

export type PatientDetail = { id: string, name: string, sex: Sex, birthDate: string, age: number, isInsured: boolean, phone: string | null, };

export type DoctorDto = { id: string, name: string, department: string, };

export type AppointmentStatus = "booked" | "checked_in" | "completed" | "cancelled" | "no_show";

export type AppointmentDto = { id: string, doctorId: string, patientId: string, patientName: string, patientAge: number, patientInsured: boolean, 
/**
 * Wall-clock times in the clinic's zone, `HH:MM`, whatever the machine's zone.
 */
startLocal: string, endLocal: string, status: AppointmentStatus, };

export type DaySchedule = { 
/**
 * The clinic day shown, `YYYY-MM-DD`.
 */
date: string, timeZone: string, isToday: boolean, 
/**
 * After how many minutes without a successful sync the schedule says it may be out of date.
 */
staleAfterMinutes: number, doctors: Array<DoctorDto>, appointments: Array<AppointmentDto>, };

export type PainScale = "nrs" | "wong_baker_faces";

export type ReportStateDto = "queued" | "sending" | "delivered" | "rejected" | "superseded" | "received";

export type PainBand = "none" | "mild" | "moderate" | "severe";

export type Activity = "rest" | "movement";

export type Reassessment = "not_needed" | "done" | "due" | "overdue";

export type PainReportDto = { id: string, patientId: string, scale: PainScale, score: number, band: PainBand, 
/**
 * RFC 3339, UTC.
 */
assessedAt: string, recordedAt: string, 
/**
 * Staff ID; `recordedByName` when this device knows the member (from the
 * clinic's pulled staff list). Empty when the server did not say.
 */
recordedBy: string, recordedByName: string | null, 
/**
 * The device it was recorded on (empty when the server did not say).
 */
deviceId: string, 
/**
 * Recorded on another device and received from the server (else this device's own).
 */
received: boolean, 
/**
 * For a received report: when the server first stored it, and when this device pulled it.
 */
receivedAt: string | null, pulledAt: string | null, 
/**
 * The record (the first report of its chain tree) this report belongs to.
 */
recordId: string, 
/**
 * Neither superseded nor settled by a resolution.
 */
live: boolean, 
/**
 * The record's shown current value (ARCHITECTURE.md, "Concurrent corrections").
 */
current: boolean, 
/**
 * The record has more than one live report: concurrent corrections to settle.
 */
conflicting: boolean, 
/**
 * The other corrections this one settled (a resolution).
 */
resolves: Array<string>, state: ReportStateDto, 
/**
 * The server's reason for a rejected report; the last delivery error for a queued one.
 */
lastError: string | null, attempts: number, deliveredAt: string | null, 
/**
 * The report this one corrects, and why.
 */
supersedes: string | null, correctionReason: string | null, 
/**
 * The correction that replaced this report (or the resolution that settled
 * it): it stays visible, marked superseded.
 */
supersededBy: string | null, bodySite: string | null, activity: Activity | null, note: string | null, intervention: string | null, 
/**
 * The assessment this one reassesses.
 */
followsUp: string | null, followedUpBy: string | null, reassessDueAt: string | null, reassessment: Reassessment, };

export type AssessmentForm = { 
/**
 * `nrs` or `wong_baker_faces`.
 */
scale: string, score: number, 
/**
 * RFC 3339 with offset, or `YYYY-MM-DDTHH:MM` on the clinic's clock; null is now.
 */
assessedAt: string | null, bodySite: string | null, 
/**
 * `rest` or `movement`.
 */
activity: string | null, note: string | null, intervention: string | null, };

export type AssessmentInput = { patientId: string, 
/**
 * The assessment with an intervention that this one reassesses.
 */
followsUp: string | null, 
/**
 * `nrs` or `wong_baker_faces`.
 */
scale: string, score: number, 
/**
 * RFC 3339 with offset, or `YYYY-MM-DDTHH:MM` on the clinic's clock; null is now.
 */
assessedAt: string | null, bodySite: string | null, 
/**
 * `rest` or `movement`.
 */
activity: string | null, note: string | null, intervention: string | null, };

export type CorrectionInput = { reason: string, 
/**
 * `nrs` or `wong_baker_faces`.
 */
scale: string, score: number, 
/**
 * RFC 3339 with offset, or `YYYY-MM-DDTHH:MM` on the clinic's clock; null is now.
 */
assessedAt: string | null, bodySite: string | null, 
/**
 * `rest` or `movement`.
 */
activity: string | null, note: string | null, intervention: string | null, };

export type PendingReassessmentDto = { report: PainReportDto, patientName: string, };

export type Trend = "up" | "down" | "same" | "first";

export type WardPatientDto = { patientId: string, patientName: string, 
/**
 * The latest current report (a superseded one never is).
 */
reportId: string, scale: PainScale, score: number, band: PainBand, 
/**
 * RFC 3339, UTC.
 */
assessedAt: string, 
/**
 * Whole minutes from the assessment to `asOf` (0 for a time a little ahead of this clock).
 */
minutesAgo: number, 
/**
 * Staff ID; `recordedByName` when this device knows the member.
 */
recordedBy: string, recordedByName: string | null, deviceId: string, 
/**
 * Recorded on this device (otherwise received from another).
 */
recordedHere: boolean, trend: Trend, 
/**
 * The current score before the latest one (`trend` compares the two).
 */
previousScore: number | null, previousAssessedAt: string | null, 
/**
 * `not_needed`, `due` or `overdue`: the earliest reassessment the patient is still owed.
 */
reassessment: Reassessment, reassessDueAt: string | null, };

export type WardBoardDto = { 
/**
 * Hours back the board looks (the clinic's setting, 24 unless set).
 */
windowHours: number, 
/**
 * The clinic's zone: times are shown in it.
 */
timeZone: string, 
/**
 * RFC 3339 of the moment the board was read; `minutesAgo` counts to it.
 */
asOf: string, 
/**
 * Most urgent first: overdue reassessment, then a severe score, then the oldest assessment.
 */
patients: Array<WardPatientDto>, };

export type StaffDto = { id: string, name: string, 
/**
 * `doctor` or `nurse`.
 */
role: string, department: string, 
/**
 * False when the clinic sent no PIN verifier for this member: they cannot sign in here.
 */
canSignIn: boolean, };

export type SessionStateDto = "signed_out" | "active" | "locked";

export type Access = "open" | "lookup" | "schedule" | "read_pain" | "record_pain";

export type SessionDto = { state: SessionStateDto, staffId: string | null, staffName: string | null, role: string | null, 
/**
 * What whoever is at the device may do now, by the role table: the UI shows
 * only these (Rust refuses the rest whatever the UI shows).
 */
allowed: Array<Access>, lockAfterMinutes: number, 
/**
 * An active session: in how many milliseconds it locks unless the member is
 * active again first, so the UI covers the screen at that moment rather than
 * at its next check.
 */
locksInMs: number | null, backdateWindowMinutes: number, reassessIntervalMinutes: number, 
/**
 * The clinic's zone: times are shown and entered in it.
 */
timeZone: string, };

export type AuditEntryDto = { at: string, actor: string, actorName: string | null, deviceId: string, 
/**
 * created, corrected, superseded, sync_state, retried, signed_in, signed_out,
 * sign_in_failed, exported, received (pulled from the server), conflicting
 * (the record was left with concurrent corrections).
 */
action: string, 
/**
 * JSON with the action's particulars (e.g. `{"from":"sending","to":"delivered"}`).
 */
detail: string | null, };

export type ExportDto = { path: string, observations: number, };

export type SyncProblemKindDto = "offline" | "timeout" | "server_error" | "credentials_refused" | "protocol" | "local_storage" | "unexpected_answer" | "feeds_missing";

export type BootstrapPhaseDto = "loading" | "indexing";

export type BootstrapProgressDto = { phase: BootstrapPhaseDto, 
/**
 * Records loaded (loading) or patients indexed (indexing) so far.
 */
done: number, total: number, 
/**
 * 0 to 100, of the phase.
 */
percent: number, 
/**
 * Estimated from the rate so far; null until there is one.
 */
secondsLeft: number | null, };

export type SyncProblemDto = { kind: SyncProblemKindDto, 
/**
 * English detail for support; no patient data, no tokens.
 */
detail: string, at: string, };

export type SyncStatusDto = { 
/**
 * A central server is configured for this device.
 */
configured: boolean, 
/**
 * `true` after the server last answered, `false` when it could not be reached, null before the first try.
 */
online: boolean | null, running: boolean, 
/**
 * Reports saved here and not yet acknowledged by the server.
 */
waiting: number, 
/**
 * Reports the server refused, kept with its reason.
 */
rejected: number, 
/**
 * RFC 3339 of the last completed sync; kept across restarts.
 */
lastSuccessAt: string | null, lastError: SyncProblemDto | null, credentialsRefused: boolean, 
/**
 * The server takes reports but sends no patients or schedules (the hospital's
 * original API); `lastSuccessAt` is then the last confirmed upload.
 */
uploadOnly: boolean, 
/**
 * Pulled records this device refused and set aside (listed on the diagnostics screen).
 */
setAside: number, 
/**
 * Grows whenever a sync applied pulled changes; screens reload when it does.
 */
pulledChanges: number, 
/**
 * The clinic is being loaded from the server's snapshot (a new device).
 */
bootstrap: BootstrapProgressDto | null, };

export type SettingsSourceDto = "flag" | "environment" | "provisioned" | "installed" | "none";

export type StoreKeyDto = "keyring" | "file" | "none";

export type PulledStreamDto = "patients" | "staff" | "appointments" | "reports";

export type SetAsideDto = { stream: PulledStreamDto, 
/**
 * The record's ID as the server sent it.
 */
id: string, 
/**
 * The feed's change number.
 */
seq: bigint, reason: string, 
/**
 * RFC 3339.
 */
at: string, };

export type DiagnosticsDto = { version: string, dataDir: string, databasePath: string, 
/**
 * Size of the database file and its write-ahead log, KiB.
 */
databaseKib: number, schemaVersion: number, 
/**
 * Where the key of the encrypted store is kept.
 */
storeKey: StoreKeyDto, 
/**
 * The key file, when the key is kept in one.
 */
storeKeyFile: string | null, logDir: string, 
/**
 * A clinic, a server and a credential are configured.
 */
provisioned: boolean, clinicId: string | null, clinicName: string | null, serverUrl: string | null, 
/**
 * Which layer the server setting came from.
 */
serverSource: SettingsSourceDto, 
/**
 * The profile says `server.allow_insecure_http = true` (shown in red).
 */
allowInsecureHttp: boolean, 
/**
 * The server URL is plain `http://` to another machine without
 * `allow_insecure_http`: the device refuses it and does not sync.
 */
insecureServerUrl: boolean, 
/**
 * Profile files that could not be read, or why the store refused the profile (English).
 */
problems: Array<string>, sync: SyncStatusDto, 
/**
 * Pulled records this device refused, newest first (at most [`SET_ASIDE_SHOWN`]).
 */
setAside: Array<SetAsideDto>, };

export type ConnectionFailureDto = "not_configured" | "bad_url" | "dns" | "refused" | "timeout" | "tls" | "not_clinic_central" | "credential_rejected" | "server_error" | "network" | "enrolment_refused" | "insecure_http";

export type ConnectionTestDto = { ok: boolean, failure: ConnectionFailureDto | null, 
/**
 * English detail for support (no token).
 */
detail: string, };

export type ProvisionOutcomeDto = { provisioned: boolean, 
/**
 * Set when the server check failed; nothing was saved then.
 */
failure: ConnectionFailureDto | null, detail: string, clinicId: string | null, 
/**
 * Sync was already running with the old settings, or the store could not be set up
 * for the saved profile: the new settings apply after a restart.
 */
restartNeeded: boolean, };

export type SupportBundleDto = { path: string, };
