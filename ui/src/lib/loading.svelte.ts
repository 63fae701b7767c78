// One app-wide "busy" flag that does not flicker: it shows only when some
// request has been pending for SHOW_AFTER_MS, and once shown stays at least
// MIN_VISIBLE_MS.

const SHOW_AFTER_MS = 250;
const MIN_VISIBLE_MS = 400;

let pending = 0;
let visible = $state(false);
let shownAt = 0;
let showTimer: ReturnType<typeof setTimeout> | null = null;
let hideTimer: ReturnType<typeof setTimeout> | null = null;

export const loading = {
  get visible(): boolean {
    return visible;
  },
};

function begin(): void {
  pending += 1;
  if (hideTimer !== null) {
    clearTimeout(hideTimer);
    hideTimer = null;
  }
  if (!visible && showTimer === null) {
    showTimer = setTimeout(() => {
      showTimer = null;
      if (pending > 0) {
        visible = true;
        shownAt = Date.now();
      }
    }, SHOW_AFTER_MS);
  }
}

function end(): void {
  pending = Math.max(0, pending - 1);
  if (pending > 0) return;
  if (showTimer !== null) {
    clearTimeout(showTimer);
    showTimer = null;
  }
  if (visible && hideTimer === null) {
    const left = Math.max(0, MIN_VISIBLE_MS - (Date.now() - shownAt));
    hideTimer = setTimeout(() => {
      hideTimer = null;
      if (pending === 0) visible = false;
    }, left);
  }
}

/** Counts `promise` towards the busy indicator until it settles. */
export async function track<T>(promise: Promise<T>): Promise<T> {
  begin();
  try {
    return await promise;
  } finally {
    end();
  }
}
