// The one place the UI turns dates and instants into text. Calendar arithmetic on
// clinic dates (`YYYY-MM-DD`) is done in UTC so that the machine's own time zone can
// never shift a day; an instant is shown on the clinic's clock (the zone Rust sends),
// except the device's own events (`deviceTime`).

const YMD = /^(\d{4})-(\d{2})-(\d{2})$/;

function parse(ymd: string): Date | null {
  const m = YMD.exec(ymd);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  // Rejects 2024-02-30 and the like, which Date would roll over.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) {
    return null;
  }
  return date;
}

export function isValidYmd(ymd: string): boolean {
  return parse(ymd) !== null;
}

function format(date: Date): string {
  const y = String(date.getUTCFullYear()).padStart(4, '0');
  const m = String(date.getUTCMonth() + 1).padStart(2, '0');
  const d = String(date.getUTCDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

/** `ymd` moved by `days`; null when `ymd` is not a valid date. */
export function addDays(ymd: string, days: number): string | null {
  const date = parse(ymd);
  if (!date) return null;
  date.setUTCDate(date.getUTCDate() + days);
  return format(date);
}

/** 0 = Sunday .. 6 = Saturday; null when `ymd` is not a valid date. */
export function weekday(ymd: string): number | null {
  const date = parse(ymd);
  return date ? date.getUTCDay() : null;
}

/** `YYYY-MM-DD` and its weekday from `weekdays` (Sunday first); `ymd` alone when it is not a date. */
export function dayLabel(ymd: string, weekdays: readonly string[]): string {
  const w = weekday(ymd);
  return w === null ? ymd : `${ymd} ${weekdays[w]}`;
}

// One formatter per zone: making one costs far more than using it, and a board or a
// record list formats hundreds of instants at a time. (A zone the webview does not
// know still throws, each time, as before.)
const clinicFormats = new Map<string, Intl.DateTimeFormat>();

function clinicFormat(timeZone: string): Intl.DateTimeFormat {
  let format = clinicFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    clinicFormats.set(timeZone, format);
  }
  return format;
}

/** The wall-clock parts of `instant` on the clinic's clock (`timeZone`), whatever the machine's zone. */
function clinicParts(instant: Date, timeZone: string): Record<string, string> {
  const parts = clinicFormat(timeZone).formatToParts(instant);
  return Object.fromEntries(parts.map((p) => [p.type, p.value]));
}

/** `YYYY-MM-DDTHH:MM` on the clinic's clock: what a date-time field shows and Rust reads in that zone. */
export function clinicLocalInput(instant: Date, timeZone: string): string {
  const p = clinicParts(instant, timeZone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// An RFC 3339 instant as Rust sends it: a date, a time and an offset. Without the
// offset `Date` would read the time on the machine's clock; a loose parse would turn
// "" or a bare number into some day in 1970 or 2000. Anything else is not a time.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

/** The instant `value` names; null when it is missing or not an RFC 3339 instant. */
export function parseInstant(value: string | null | undefined): Date | null {
  if (typeof value !== 'string' || !RFC3339.test(value)) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

// Every function below returns null for a value that is not an instant, never "" or
// the epoch: the caller shows its language's "invalid time" marker instead.

/** `MM-DD HH:MM` (or `HH:MM` with `timeOnly`) of an RFC 3339 instant on the clinic's clock. */
export function clinicTime(rfc3339: string | null | undefined, timeZone: string, timeOnly = false): string | null {
  const d = parseInstant(rfc3339);
  if (!d) return null;
  const p = clinicParts(d, timeZone);
  return timeOnly ? `${p.hour}:${p.minute}` : `${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** The hour and minute of an RFC 3339 instant on the clinic's clock, in the language's own style. */
export function clinicClock(
  rfc3339: string | null | undefined,
  timeZone: string | undefined,
  lang: string,
): string | null {
  const d = parseInstant(rfc3339);
  if (!d || rfc3339 == null) return null;
  try {
    return d.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit', timeZone });
  } catch {
    // A zone this webview does not know: the instant as Rust sent it (with its offset),
    // never a time on the machine's clock that looks like the clinic's.
    return rfc3339;
  }
}

/**
 * Date and time of an RFC 3339 instant on this machine's clock, in the language's own style:
 * for what happened on this device (a sync, a log entry), not for the clinic's records.
 */
export function deviceTime(rfc3339: string | null | undefined, lang: string): string | null {
  const d = parseInstant(rfc3339);
  return d ? d.toLocaleString(lang) : null;
}
