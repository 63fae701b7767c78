// The only module that talks to Rust. One typed function per Tauri command;
// every failure is turned into a `UiError` with a code the UI can translate.

import { Channel, invoke } from '@tauri-apps/api/core';
import type {
  AppInfo,
  AssessmentInput,
  AuditEntryDto,
  CorrectionInput,
  DaySchedule,
  DoctorDto,
  ErrorCode,
  ExportDto,
  PainReportDto,
  PatientDetail,
  PatientSearch,
  PendingReassessmentDto,
  SessionDto,
  StaffDto,
  SyncStatusDto,
  ConnectionTestDto,
  DiagnosticsDto,
  ProvisionOutcomeDto,
  SupportBundleDto,
} from './bindings';

/** Codes the UI itself produces, for failures that never reached a command. */
export type UiErrorCode = 'internal' | 'backend_unavailable';
export type AnyErrorCode = ErrorCode | UiErrorCode;

/** Same shape as Rust's `ApiError`, with the UI's own codes added. */
export interface UiError {
  code: AnyErrorCode;
  /** English detail, for support; the UI shows a translation of `code`. */
  message: string;
}

// `satisfies` makes this list fail to compile when Rust adds or drops a code.
// ('internal' is both Rust's code for its own bugs and the UI's for anything
// unexpected, such as Tauri refusing a call.)
const KNOWN_CODES = {
  query_too_long: true,
  invalid_patient_id: true,
  invalid_doctor_id: true,
  invalid_date: true,
  patient_not_found: true,
  database_too_new: true,
  storage_failed: true,
  invalid_score: true,
  invalid_scale: true,
  invalid_assessment_time: true,
  assessment_in_future: true,
  assessment_too_old: true,
  invalid_assessment_details: true,
  invalid_follow_up: true,
  report_already_corrected: true,
  not_signed_in: true,
  session_locked: true,
  unknown_staff: true,
  pin_not_set: true,
  wrong_pin: true,
  pin_attempts_exceeded: true,
  export_failed: true,
  report_not_found: true,
  report_not_rejected: true,
  invalid_correction_reason: true,
  sync_not_configured: true,
  internal: true,
  backend_unavailable: true,
  invalid_profile: true,
  other_clinic_data: true,
  support_bundle_failed: true,
} as const satisfies Record<AnyErrorCode, true>;

function isKnownCode(code: unknown): code is AnyErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(KNOWN_CODES, code);
}

/** Turns anything a command (or `invoke` itself) threw into a `UiError`; idempotent. */
export function toUiError(thrown: unknown): UiError {
  if (typeof thrown === 'object' && thrown !== null) {
    const { code, message } = thrown as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (isKnownCode(code)) return { code, message: text };
    if (typeof code === 'string') {
      // A code newer than these bindings: keep it visible in the detail.
      return { code: 'internal', message: text ? `${code}: ${text}` : code };
    }
    if (thrown instanceof Error) {
      return { code: 'internal', message: thrown.message || String(thrown) };
    }
    try {
      return { code: 'internal', message: JSON.stringify(thrown) };
    } catch {
      return { code: 'internal', message: String(thrown) };
    }
  }
  // Tauri reports its own failures (unknown command, bad arguments) as strings.
  return { code: 'internal', message: String(thrown) };
}

function insideTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  if (!insideTauri()) {
    throw {
      code: 'backend_unavailable',
      message: `"${command}" needs the Tauri shell`,
    } satisfies UiError;
  }
  try {
    return await invoke<T>(command, args);
  } catch (thrown) {
    throw toUiError(thrown);
  }
}

/** Rejects with a `UiError`. */
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

export function listDoctors(): Promise<DoctorDto[]> {
  return call<DoctorDto[]>('list_doctors');
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
export function patientReports(patientId: string): Promise<PainReportDto[]> {
  return call<PainReportDto[]>('patient_reports', { patientId });
}

export function retryRejectedReport(reportId: string): Promise<PainReportDto> {
  return call<PainReportDto>('retry_rejected_report', { reportId });
}

/** Supersedes a record by a corrected one; the original stays on record, marked. */
export function correctReport(reportId: string, input: CorrectionInput): Promise<PainReportDto> {
  return call<PainReportDto>('correct_report', { reportId, input });
}

export function reportHistory(reportId: string): Promise<AuditEntryDto[]> {
  return call<AuditEntryDto[]>('report_history', { reportId });
}

export function pendingReassessments(): Promise<PendingReassessmentDto[]> {
  return call<PendingReassessmentDto[]>('pending_reassessments');
}

/** Writes a FHIR R4 Bundle (one patient, or all when null) beside the database. */
export function exportFhir(patientId: string | null): Promise<ExportDto> {
  return call<ExportDto>('export_fhir', { patientId });
}

export function listStaff(): Promise<StaffDto[]> {
  return call<StaffDto[]>('list_staff');
}

/** Who is signed in; `active` tells Rust the user just did something. */
export function staffSession(active: boolean): Promise<SessionDto> {
  return call<SessionDto>('staff_session', { active });
}

export function signIn(staffId: string, pin: string): Promise<SessionDto> {
  return call<SessionDto>('sign_in', { staffId, pin });
}

export function signOut(): Promise<SessionDto> {
  return call<SessionDto>('sign_out');
}

export function syncStatus(): Promise<SyncStatusDto> {
  return call<SyncStatusDto>('sync_status');
}

export function syncNow(): Promise<void> {
  return call<void>('sync_now');
}

/** Calls `onStatus` now and whenever the sync status changes (pushed by Rust, not polled). */
export async function subscribeSyncStatus(onStatus: (s: SyncStatusDto) => void): Promise<void> {
  const channel = new Channel<SyncStatusDto>();
  channel.onmessage = onStatus;
  await call<void>('subscribe_sync_status', { channel });
}

// ---- Installation: diagnostics and first-run provisioning (issue #8) ----

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
