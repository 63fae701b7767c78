// The pain band a record or a score target is drawn in. Rust decides a record's band;
// the form colours its targets by the same bands (0 none, 1–3 mild, 4–6 moderate,
// 7–10 severe) as a convenience. A value outside them is "unknown", drawn neutral and
// named as such: never a colour that says something about the patient.

import type { PainBand } from './bindings';

export type Band = PainBand | 'unknown';

// Keyed by every band Rust has, so a band added there fails the type check here.
const KNOWN: Record<PainBand, true> = { none: true, mild: true, moderate: true, severe: true };

/** `band` when it is one of the bands, else `unknown`. */
export function bandOf(band: unknown): Band {
  return typeof band === 'string' && Object.hasOwn(KNOWN, band) ? (band as PainBand) : 'unknown';
}

/** The band of a 0–10 score; `unknown` for anything else. */
export function bandOfScore(score: number): Band {
  if (!Number.isInteger(score) || score < 0 || score > 10) return 'unknown';
  return score === 0 ? 'none' : score <= 3 ? 'mild' : score <= 6 ? 'moderate' : 'severe';
}
