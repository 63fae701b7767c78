// The front desk's day: which day and doctor are asked for, the day Rust returned
// for them, and the live diff. When a sync applies pulled changes (a booking, a
// cancellation), the day on screen is reloaded and the rows whose status changed
// are marked for a while, without anyone asking.
//
// Created while a component initialises: its effects (loading when the day or the
// doctor changes, following the sync status) live as long as that component.

import { untrack } from 'svelte';
import { daySchedule, listDoctors, toUiError, type UiError } from './api';
import type { DaySchedule, DoctorDto } from './bindings';
import { addDays, isValidYmd } from './dates';
import { track } from './loading.svelte';
import { sync } from './sync.svelte';

/** How long a row changed by a sync stays marked. */
const CHANGE_MARK_MS = 8000;

export class ScheduleDay {
  /** The day asked for; null = the clinic's today, decided by Rust. */
  requestedDate = $state<string | null>(null);
  /** "" = all doctors. */
  doctorId = $state('');
  // Raw: a day is replaced whole, never edited, so its hundreds of rows need no deep proxies.
  schedule = $state.raw<DaySchedule | null>(null);
  error = $state<UiError | null>(null);
  doctors = $state.raw<DoctorDto[]>([]);
  doctorsError = $state<UiError | null>(null);
  /** A request for another day or doctor is on its way. */
  busy = $state(false);
  /** IDs of the appointments the last live refresh changed. */
  changed = $state.raw<ReadonlySet<string>>(new Set());

  #seq = 0;
  #shownKey = '';
  #changeTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #clinicToday: () => string | null;
  readonly #onNewView: () => void;

  /**
   * `clinicToday`: the clinic's date from `app_info`, a hint until the first day arrives.
   * `onNewView`: called before another day or doctor is shown (a live refresh of the
   * same one is not), so the board can start at the top.
   */
  constructor(clinicToday: () => string | null, onNewView: () => void) {
    this.#clinicToday = clinicToday;
    this.#onNewView = onNewView;

    $effect(() => {
      const date = this.requestedDate;
      const doctor = this.doctorId;
      untrack(() => void this.#load(date, doctor));
    });
    $effect(() => untrack(() => void this.loadDoctors()));
    sync.onPulled(() => void this.#refreshLive());
    $effect(() => () => clearTimeout(this.#changeTimer));
  }

  async #load(date: string | null, doctor: string): Promise<void> {
    const mine = ++this.#seq;
    this.busy = true;
    try {
      const day = await track(daySchedule(date, doctor === '' ? null : doctor));
      if (mine !== this.#seq) return;
      // Another day or doctor starts at the top; a live refresh of the same one stays put.
      const shown = `${day.date}|${doctor}`;
      if (shown !== this.#shownKey) this.#onNewView();
      this.#shownKey = shown;
      this.schedule = day;
      this.error = null;
    } catch (thrown) {
      if (mine !== this.#seq) return;
      this.error = toUiError(thrown);
    } finally {
      if (mine === this.#seq) this.busy = false;
    }
  }

  async loadDoctors(): Promise<void> {
    try {
      this.doctors = await track(listDoctors());
      this.doctorsError = null;
    } catch (thrown) {
      this.doctorsError = toUiError(thrown);
    }
  }

  reload(): void {
    void this.#load(this.requestedDate, this.doctorId);
  }

  async #refreshLive(): Promise<void> {
    const before = new Map((this.schedule?.appointments ?? []).map((a) => [a.id, a.status] as const));
    await this.#load(this.requestedDate, this.doctorId);
    if (before.size === 0) return;
    const diff = (this.schedule?.appointments ?? []).filter((a) => before.get(a.id) !== a.status).map((a) => a.id);
    if (diff.length === 0) return;
    this.changed = new Set(diff);
    clearTimeout(this.#changeTimer);
    this.#changeTimer = setTimeout(() => (this.changed = new Set()), CHANGE_MARK_MS);
  }

  /** The day the previous/next buttons step from. */
  #baseDate(): string | null {
    const clinicToday = this.#clinicToday();
    if (this.requestedDate !== null && isValidYmd(this.requestedDate)) return this.requestedDate;
    if (this.requestedDate === null) {
      if (this.schedule?.isToday) return this.schedule.date;
      if (clinicToday) return clinicToday;
    }
    return this.schedule?.date ?? clinicToday;
  }

  step(days: number): void {
    const base = this.#baseDate();
    const next = base ? addDays(base, days) : null;
    if (next) this.requestedDate = next;
  }

  goToday(): void {
    const already = this.requestedDate === null;
    this.requestedDate = null;
    // Asking again for "today" (say, after midnight) must still reload.
    if (already) this.reload();
  }

  /** The day on screen, or the one asked for while it loads. */
  get shownDate(): string | null {
    return this.schedule?.date ?? this.requestedDate ?? this.#clinicToday();
  }
}
