// Calendar arithmetic on clinic dates (`YYYY-MM-DD`). Done in UTC so that the
// machine's own time zone can never shift a day.

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


/** The wall-clock parts of `instant` on the clinic's clock (`timeZone`), whatever the machine's zone. */
function clinicParts(instant: Date, timeZone: string): Record<string, string> {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(instant);
  return Object.fromEntries(parts.map((p) => [p.type, p.value]));
}

/** `YYYY-MM-DDTHH:MM` on the clinic's clock: what a date-time field shows and Rust reads in that zone. */
export function clinicLocalInput(instant: Date, timeZone: string): string {
  const p = clinicParts(instant, timeZone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** `MM-DD HH:MM` (or `HH:MM` with `timeOnly`) of an RFC 3339 instant on the clinic's clock. */
export function clinicTime(rfc3339: string, timeZone: string, timeOnly = false): string {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const p = clinicParts(d, timeZone);
  return timeOnly ? `${p.hour}:${p.minute}` : `${p.month}-${p.day} ${p.hour}:${p.minute}`;
}
