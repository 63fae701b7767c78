// The sync status shared by every component: one subscription to the status Rust
// pushes over a channel, started once by the app.

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
