// The UI's languages: one dictionary per language under `i18n/`, each of the type
// `Messages` (`i18n/messages.ts`), so a key missing from any of them fails
// `svelte-check` and therefore `npm run build`. This module is what components
// import: the dictionaries by language, and which language to start in.

import { en } from './i18n/en';
import type { Lang, Messages } from './i18n/messages';
import { zhCN } from './i18n/zh-CN';

export type { Lang, Messages } from './i18n/messages';

export const LANGS: readonly Lang[] = ['zh-CN', 'en'];

export const dictionaries: Record<Lang, Messages> = { 'zh-CN': zhCN, en };

export const LANG_STORAGE_KEY = 'clinic-desk.lang';

/** `zh`, `zh-CN`, `zh-Hans-SG`, `zh-TW`, ... → zh-CN; anything else → en. */
export function langFromLocale(locale: string | null | undefined): Lang {
  return locale && locale.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function isLang(value: unknown): value is Lang {
  return typeof value === 'string' && (LANGS as readonly string[]).includes(value);
}

/** Whether this user has picked a language with the toggle (then nothing overrides it). */
export function hasSavedLang(): boolean {
  try {
    return isLang(localStorage.getItem(LANG_STORAGE_KEY));
  } catch {
    return false;
  }
}

/** The saved choice if there is one, else the OS/webview locale. */
export function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(LANG_STORAGE_KEY);
    if (isLang(saved)) return saved;
  } catch {
    // Storage may be unavailable; fall back to the locale.
  }
  return langFromLocale(typeof navigator === 'undefined' ? null : navigator.language);
}

export function saveLang(lang: Lang): void {
  try {
    localStorage.setItem(LANG_STORAGE_KEY, lang);
  } catch {
    // Not fatal: the choice just isn't remembered.
  }
}
