// The current language, reactive. Dictionaries and detection live in i18n.ts.

import { dictionaries, hasSavedLang, initialLang, isLang, saveLang, type Lang, type Messages } from './i18n';

const first = initialLang();
let current = $state<Lang>(first);

function apply(lang: Lang): void {
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}
apply(first);

export const locale = {
  get lang(): Lang {
    return current;
  },
  get t(): Messages {
    return dictionaries[current];
  },
  /** The language the toggle switches to. */
  get other(): Lang {
    return current === 'zh-CN' ? 'en' : 'zh-CN';
  },
  set(lang: Lang): void {
    current = lang;
    saveLang(lang);
    apply(lang);
  },
  /** The clinic's language (from its profile) replaces the OS locale, never a user's own choice. */
  adoptClinicDefault(lang: string | null): void {
    if (!isLang(lang) || hasSavedLang() || lang === current) return;
    current = lang;
    apply(lang);
  },
  toggle(): void {
    this.set(this.other);
  },
};
