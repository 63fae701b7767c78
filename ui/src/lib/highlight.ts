// Which part of a search result to mark, mirroring how Rust matched it
// (clinic_domain::lookup). The query is normalised the same way: full-width
// letters and digits to ASCII, white space removed.

import type { MatchKind } from './bindings';

export interface Segment {
  text: string;
  hit: boolean;
}

export function normalizeQuery(raw: string): string {
  return Array.from(raw)
    .map((c) => {
      const code = c.codePointAt(0)!;
      if (code >= 0xff01 && code <= 0xff5e) return String.fromCodePoint(code - 0xfee0);
      return c;
    })
    .filter((c) => !/\s/u.test(c))
    .join('');
}

/** Splits `text` around the first case-insensitive occurrence of `needle`. */
export function mark(text: string, needle: string): Segment[] {
  if (!needle) return [{ text, hit: false }];
  const at = text.toLowerCase().indexOf(needle.toLowerCase());
  if (at < 0) return [{ text, hit: false }];
  const parts: Segment[] = [];
  if (at > 0) parts.push({ text: text.slice(0, at), hit: false });
  parts.push({ text: text.slice(at, at + needle.length), hit: true });
  if (at + needle.length < text.length) parts.push({ text: text.slice(at + needle.length), hit: false });
  return parts;
}

export type Field = 'name' | 'id' | 'phone';

/** The segments of `field` to show for a result that matched `kind` on `query`. */
export function segments(field: Field, text: string, kind: MatchKind, query: string): Segment[] {
  const q = normalizeQuery(query);
  switch (kind) {
    case 'id_exact':
    case 'id_prefix':
      return field === 'id' ? mark(text, q) : [{ text, hit: false }];
    case 'name_exact':
    case 'name_prefix':
    case 'name_substring':
      return field === 'name' ? mark(text, q) : [{ text, hit: false }];
    case 'initials':
    case 'pinyin':
      // The whole name answered to its pinyin.
      return [{ text, hit: field === 'name' }];
    case 'phone_tail':
      if (field !== 'phone') return [{ text, hit: false }];
      // The tail shown is four digits; mark as much of it as the query covers.
      return mark(text, q.slice(-text.length)).some((s) => s.hit)
        ? mark(text, q.slice(-text.length))
        : [{ text, hit: true }];
  }
}
