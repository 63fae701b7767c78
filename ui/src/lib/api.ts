// The only module that talks to Rust. One typed function per Tauri command,
// generated from Rust's command list into `commands.ts` and re-exported here;
// every failure is turned into a `UiError` with a code the UI can translate.

import { invoke } from '@tauri-apps/api/core';
import type { ErrorCode } from './bindings';

export * from './commands';

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
  store_key_missing: true,
  store_key_wrong: true,
  invalid_score: true,
  invalid_scale: true,
  invalid_assessment_time: true,
  assessment_in_future: true,
  assessment_too_old: true,
  invalid_assessment_details: true,
  invalid_follow_up: true,
  report_already_corrected: true,
  invalid_resolution: true,
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
  not_permitted: true,
  session_held: true,
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

/** Invokes `command`; rejects with a `UiError`. Used by the generated callers. */
export async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
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
