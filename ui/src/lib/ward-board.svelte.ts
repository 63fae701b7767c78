// The ward pain board as Rust returned it, kept current while it is on screen:
// loaded when shown, reloaded every REFRESH_MS (how long ago moves, and a due
// reassessment turns overdue, with time alone) and whenever a sync applied pulled
// changes (a score recorded on another device), like the schedule's day. Rust
// decides the rows and their order; nothing here sorts or filters them.
//
// Created while a component initialises: its effects live as long as that component.

import { untrack } from 'svelte';
import { toUiError, wardBoard, type UiError } from './api';
import type { WardBoardDto } from './bindings';
import { track } from './loading.svelte';
import { sync } from './sync.svelte';

const REFRESH_MS = 30_000;

export class WardBoard {
  // Raw: a board is replaced whole, never edited.
  board = $state.raw<WardBoardDto | null>(null);
  error = $state<UiError | null>(null);
  /** How many boards have been put on screen (tests and the repaint benchmark wait on it). */
  loads = $state(0);

  #seq = 0;
  readonly #visible: () => boolean;
  readonly #beforeReplace: () => () => void;

  /**
   * `visible`: the screen is shown (a hidden board is not reloaded; it reloads when shown).
   * `beforeReplace`: called just before a new board replaces the old one; the function it
   * returns runs just after, so the component can keep the focused row focused.
   */
  constructor(visible: () => boolean, beforeReplace: () => () => void) {
    this.#visible = visible;
    this.#beforeReplace = beforeReplace;

    $effect(() => {
      if (this.#visible()) untrack(() => void this.load());
    });
    $effect(() => {
      if (!this.#visible()) return;
      const timer = setInterval(() => void this.load(), REFRESH_MS);
      return () => clearInterval(timer);
    });
    sync.onPulled(() => {
      if (this.#visible()) void this.load();
    });
  }

  async load(): Promise<void> {
    const mine = ++this.#seq;
    try {
      const next = await track(wardBoard());
      if (mine !== this.#seq) return;
      const after = this.#beforeReplace();
      this.board = next;
      this.error = null;
      this.loads += 1;
      after();
    } catch (thrown) {
      if (mine !== this.#seq) return;
      this.error = toUiError(thrown);
    }
  }
}
