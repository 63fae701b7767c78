// What a member had open when her session locked (the patient on screen, a
// half-typed assessment): the lock takes every screen out of the DOM, so this is
// where it waits, in this page's memory only (never in the DOM, never on disk).
// Unlocking with her PIN brings it back; anyone else signing in, or her signing
// out, drops it unseen.
//
// Screens register what they would keep; the session calls them the moment it
// sees the lock, while they are still mounted (a teardown reads the values from
// before the lock, so it cannot tell a lock from any other unmount).

type Keeper = () => [key: string, value: unknown] | null;

const keepers = new Set<Keeper>();
const kept = new Map<string, unknown>();
let owner: string | null = null;

/** Registers what a mounted screen keeps when the session locks; returns the unregister. */
export function keepOnLock(keeper: Keeper): () => void {
  keepers.add(keeper);
  return () => {
    keepers.delete(keeper);
  };
}

/** The session is locking `staffId`'s session: every mounted screen keeps its draft. */
export function keepAllFor(staffId: string): void {
  if (owner !== staffId) dropDrafts();
  owner = staffId;
  for (const keeper of keepers) {
    const draft = keeper();
    if (draft) kept.set(draft[0], draft[1]);
  }
}

/** The draft `staffId` kept under `key`, once; nothing (and every draft dropped)
 * when the drafts are someone else's. */
export function takeDraft<T>(staffId: string | null | undefined, key: string): T | undefined {
  if (staffId == null || owner !== staffId) {
    dropDrafts();
    return undefined;
  }
  const value = kept.get(key) as T | undefined;
  kept.delete(key);
  return value;
}

export function dropDrafts(): void {
  kept.clear();
  owner = null;
}
