// How old the schedule on screen may be: whether this device syncs at all, and how
// long ago the server last answered.

import type { SyncStatusDto } from './bindings';
import { parseInstant } from './dates';

export type Freshness = 'local' | 'pending' | 'offline' | 'stale' | 'fresh';

/** The default when the day does not say after how many minutes it counts as stale. */
export const STALE_AFTER_MINUTES = 15;

export function freshnessOf(
  status: SyncStatusDto | null,
  nowMs: number,
  staleAfterMinutes: number = STALE_AFTER_MINUTES,
): Freshness {
  if (!status || !status.configured) return 'local';
  if (status.online === false) return 'offline';
  if (status.lastSuccessAt === null) return 'pending';
  const at = parseInstant(status.lastSuccessAt);
  // A last success that is not a time says nothing about the age: never "fresh".
  if (!at) return 'stale';
  return (nowMs - at.getTime()) / 60_000 > staleAfterMinutes ? 'stale' : 'fresh';
}
