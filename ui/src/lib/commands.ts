// Generated from the command list in crates/desk/src/ipc.rs by `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings`. Do not edit.
// Every caller rejects with a `UiError` (see `call` in api.ts).

import { Channel } from '@tauri-apps/api/core';
import { call } from './api';
import type { AppInfo, AssessmentInput, AuditEntryDto, ConnectionTestDto, CorrectionInput, DaySchedule, DiagnosticsDto, DoctorDto, ExportDto, PainReportDto, PatientDetail, PatientSearch, PendingReassessmentDto, ProvisionOutcomeDto, SessionDto, StaffDto, SupportBundleDto, SyncStatusDto, WardBoardDto } from './bindings';

export function appInfo(): Promise<AppInfo> {
  return call<AppInfo>('app_info');
}

/** ID prefix or name substring; a blank query gives an empty list. */
export function searchPatients(query: string): Promise<PatientSearch> {
  return call<PatientSearch>('search_patients', { query });
}

export function getPatient(id: string): Promise<PatientDetail> {
  return call<PatientDetail>('get_patient', { id });
}

export function listDoctors(): Promise<Array<DoctorDto>> {
  return call<Array<DoctorDto>>('list_doctors');
}

/** `date` is `YYYY-MM-DD` in the clinic's zone, null for the clinic's today. */
export function daySchedule(date: string | null, doctorId: string | null): Promise<DaySchedule> {
  return call<DaySchedule>('day_schedule', { date, doctorId });
}

/** Saves an assessment locally at once, as the signed-in member; sync delivers it. */
export function recordPainReport(input: AssessmentInput): Promise<PainReportDto> {
  return call<PainReportDto>('record_pain_report', { input });
}

/** A patient's assessments, newest first, superseded ones included. */
export function patientReports(patientId: string): Promise<Array<PainReportDto>> {
  return call<Array<PainReportDto>>('patient_reports', { patientId });
}

export function retryRejectedReport(reportId: string): Promise<PainReportDto> {
  return call<PainReportDto>('retry_rejected_report', { reportId });
}

/** Supersedes a record by a corrected one; the original stays on record, marked. */
export function correctReport(reportId: string, input: CorrectionInput): Promise<PainReportDto> {
  return call<PainReportDto>('correct_report', { reportId, input });
}

/** Settles a conflicting record: corrects its shown current report and resolves the other live ones. */
export function resolveConflict(reportId: string, input: CorrectionInput): Promise<PainReportDto> {
  return call<PainReportDto>('resolve_conflict', { reportId, input });
}

export function reportHistory(reportId: string): Promise<Array<AuditEntryDto>> {
  return call<Array<AuditEntryDto>>('report_history', { reportId });
}

export function pendingReassessments(): Promise<Array<PendingReassessmentDto>> {
  return call<Array<PendingReassessmentDto>>('pending_reassessments');
}

/** The ward pain board now: patients assessed in the clinic's window, most urgent first. */
export function wardBoard(): Promise<WardBoardDto> {
  return call<WardBoardDto>('ward_board');
}

/** Writes a FHIR R4 Bundle (one patient, or all when null) beside the database. */
export function exportFhir(patientId: string | null): Promise<ExportDto> {
  return call<ExportDto>('export_fhir', { patientId });
}

export function listStaff(): Promise<Array<StaffDto>> {
  return call<Array<StaffDto>>('list_staff');
}

/** Who is signed in; `active` tells Rust the user just did something. */
export function staffSession(active: boolean): Promise<SessionDto> {
  return call<SessionDto>('staff_session', { active });
}

export function signIn(staffId: string, pin: string): Promise<SessionDto> {
  return call<SessionDto>('sign_in', { staffId, pin });
}

/** Refused (`session_held`) while the session is locked: its member's PIN unlocks it first. */
export function signOut(): Promise<SessionDto> {
  return call<SessionDto>('sign_out');
}

/** Locks the session now; the member's PIN unlocks it. */
export function lockSession(): Promise<SessionDto> {
  return call<SessionDto>('lock_session');
}

export function syncStatus(): Promise<SyncStatusDto> {
  return call<SyncStatusDto>('sync_status');
}

export function syncNow(): Promise<void> {
  return call<void>('sync_now');
}

/** Calls `onMessage` now and whenever the sync status changes (pushed by Rust, not polled). */
export async function subscribeSyncStatus(onMessage: (message: SyncStatusDto) => void): Promise<void> {
  const channel = new Channel<SyncStatusDto>();
  channel.onmessage = onMessage;
  await call<void>('subscribe_sync_status', { channel });
}

export function diagnostics(): Promise<DiagnosticsDto> {
  return call<DiagnosticsDto>('diagnostics');
}

/** Never rejects for a network failure: the result says what failed. */
export function testConnection(): Promise<ConnectionTestDto> {
  return call<ConnectionTestDto>('test_connection');
}

export function exportSupportBundle(): Promise<SupportBundleDto> {
  return call<SupportBundleDto>('export_support_bundle');
}

/** `code`: an enrolment code (CDP1-…) or a profile's TOML; checked against the server before saving. */
export function provisionDevice(code: string): Promise<ProvisionOutcomeDto> {
  return call<ProvisionOutcomeDto>('provision_device', { code });
}
