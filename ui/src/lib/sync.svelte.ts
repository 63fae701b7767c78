// The sync status shared by every component: one subscription to the status Rust
// pushes over a channel, started once by the app.

import { untrack } from 'svelte';
import { subscribeSyncStatus, syncStatus, toUiError, type UiError } from './api';
import type { SyncStatusDto } from './bindings';

class SyncState {
  status = $state<SyncStatusDto | null>(null);
  error = $state<UiError | null>(null);
  #started = false;

  start(): void {
    if (this.#started) return;
    this.#started = true;
    subscribeSyncStatus((s) => {
      this.status = s;
      this.error = null;
    }).catch((thrown) => (this.error = toUiError(thrown)));
  }

  /**
   * Pulled changes applied since the engine started: it grows as soon as a sync's
   * pull has applied something (the engine sends it before the run's bookkeeping,
   * and a change made on another device starts that run at once through the
   * server's long poll). `null` before the first status. Derived, so what reads it
   * re-runs when the count moves, not on every status the engine pushes.
   */
  pulledChanges = $derived(this.status?.pulledChanges ?? null);

  /**
   * Calls `reload` each time a pull applies changes from now on: how a screen showing
   * the clinic's data stays live. Call it while the screen is set up (it makes an effect).
   */
  onPulled(reload: () => void): void {
    let seen: number | null = null;
    $effect(() => {
      const pulled = this.pulledChanges;
      untrack(() => {
        if (pulled !== null && seen !== null && pulled !== seen) reload();
        if (pulled !== null) seen = pulled;
      });
    });
  }

  /** Re-reads the status (after a local change on a device with no engine to push it). */
  async refresh(): Promise<void> {
    try {
      this.status = await syncStatus();
    } catch (thrown) {
      this.error = toUiError(thrown);
    }
  }
}

export const sync = new SyncState();
