// Who is signed in on this device, shared by every component. Rust decides when a
// session locks; the UI tells it when the user is active (throttled), asks again
// the moment Rust said the session would lock (so the cover comes then, not at a
// later check), and every few seconds besides (a sign-in or lock from elsewhere).

import { lockSession, signIn, signOut, staffSession, toUiError, type UiError } from './api';
import type { Access, SessionDto } from './bindings';
import { dropDrafts, keepAllFor } from './drafts';

const ACTIVITY_THROTTLE_MS = 20_000;
const CHECK_EVERY_MS = 10_000;
// Asked just after the idle limit, so Rust's clock has passed it too.
const PAST_THE_LOCK_MS = 250;
// setTimeout fires at once past 2^31 - 1 ms (a clinic may set the idle limit to weeks):
// a longer wait is asked in steps, each answer arming the next.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

class SessionState {
  #current = $state<SessionDto | null>(null);
  error = $state<UiError | null>(null);
  #lastTouch = 0;
  #started = false;
  #lockTimer: ReturnType<typeof setTimeout> | undefined;

  get current(): SessionDto | null {
    return this.#current;
  }

  set current(next: SessionDto | null) {
    // Locking: the screens, still mounted, keep what the member had open for her PIN.
    if (next?.state === 'locked' && next.staffId && this.#current?.state === 'active') {
      keepAllFor(next.staffId);
    }
    // Nobody signed in: what a locked member had open is dropped unseen.
    if (next?.state === 'signed_out') dropDrafts();
    this.#current = next;
    this.#armLockTimer(next?.locksInMs ?? null);
  }

  #armLockTimer(locksInMs: number | null): void {
    clearTimeout(this.#lockTimer);
    this.#lockTimer = undefined;
    if (locksInMs === null) return;
    const wait = Math.min(locksInMs + PAST_THE_LOCK_MS, LONGEST_TIMER_MS);
    this.#lockTimer = setTimeout(() => void this.refresh(false), wait);
  }

  get signedIn(): boolean {
    return this.current?.state === 'active';
  }

  /** Whether whoever is at the device may use what `access` names (Rust's role
   * table decides; Rust refuses the rest whatever is shown). Nothing until known. */
  may(access: Access): boolean {
    return this.current?.allowed.includes(access) ?? false;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    void this.refresh(false);
    setInterval(() => void this.refresh(false), CHECK_EVERY_MS);
    const activity = (): void => {
      const now = Date.now();
      if (this.current?.state !== 'active' || now - this.#lastTouch < ACTIVITY_THROTTLE_MS) return;
      this.#lastTouch = now;
      void this.refresh(true);
    };
    for (const type of ['pointerdown', 'keydown'] as const) {
      window.addEventListener(type, activity, { capture: true, passive: true });
    }
  }

  async refresh(active: boolean): Promise<void> {
    try {
      this.current = await staffSession(active);
      this.error = null;
    } catch (thrown) {
      this.error = toUiError(thrown);
    }
  }

  /** Throws a `UiError` (wrong PIN, wait, …) for the sign-in form to show. */
  async signIn(staffId: string, pin: string): Promise<void> {
    this.current = await signIn(staffId, pin);
    this.#lastTouch = Date.now();
  }

  async lock(): Promise<void> {
    try {
      this.current = await lockSession();
    } catch (thrown) {
      this.error = toUiError(thrown);
    }
  }

  async signOut(): Promise<void> {
    try {
      this.current = await signOut();
    } catch (thrown) {
      this.error = toUiError(thrown);
    }
  }
}

export const session = new SessionState();
