// @ts-check
/**
 * Every string the components show, in the user's language (docs/client.md,
 * "Language"). The catalogues are in ./locales/ (English, German, French, Spanish,
 * Japanese); an app adds a language with `addLocale()` and overrides any string with
 * `connect({strings})`. Times, numbers, lists and plurals come from `Intl` in the
 * chosen locale, so only words live in the catalogues.
 *
 * Which locale: the element's own `lang` attribute, else `connect({locale})`, else the
 * nearest `lang` above the element (usually `<html lang>`), else the browser's.
 * @module tocsin/lib/i18n
 */
import de from "./locales/de.js";
import en from "./locales/en.js";
import es from "./locales/es.js";
import fr from "./locales/fr.js";
import ja from "./locales/ja.js";

/** @typedef {import("../tocsin.js").Catalogue} Catalogue */
/** @typedef {import("../tocsin.js").CatalogueKey} CatalogueKey */
/** @typedef {string | Partial<Record<Intl.LDMLPluralRule, string>>} Entry */

/** @type {Map<string, Partial<Record<string, Entry>>>} */
const LOCALES = new Map(Object.entries({ en, de, fr, es, ja }));

/** The English catalogue: every key there is (tests and apps build on it). */
export const ENGLISH = /** @type {Catalogue} */ (/** @type {unknown} */ (en));

/**
 * Add (or extend) a language: `addLocale("pt", {...})`; keys it lacks fall back to
 * English.
 * @param {string} tag a BCP 47 language tag @param {Partial<Catalogue>} strings
 */
export function addLocale(tag, strings) {
  const key = tag.toLowerCase();
  LOCALES.set(key, { ...(LOCALES.get(key) ?? {}), ...strings });
  cache.clear();
}

/** The shipped and added languages. @returns {string[]} */
export function locales() {
  return [...LOCALES.keys()];
}

/**
 * The catalogue chain for a tag: "de-AT" → de-at, de, en.
 * @param {string} tag @returns {Partial<Record<string, Entry>>[]}
 */
function chain(tag) {
  const parts = tag.toLowerCase().split("-");
  const out = [];
  for (let i = parts.length; i > 0; i--) {
    const c = LOCALES.get(parts.slice(0, i).join("-"));
    if (c) out.push(c);
  }
  out.push(en);
  return out;
}

/** A tag Intl accepts ("en" for one it does not). @param {string} tag */
function intlTag(tag) {
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? "en";
  } catch {
    return "en";
  }
}

/**
 * Strings, plurals, times and lists of one locale.
 */
export class Translator {
  /** @param {string} locale @param {Partial<Catalogue>} [overrides] */
  constructor(locale, overrides) {
    this.locale = intlTag(locale || "en");
    /** @type {Partial<Record<string, Entry>>[]} */
    this.chain = [/** @type {Partial<Record<string, Entry>>} */ (overrides ?? {}), ...chain(this.locale)];
    this.plural = new Intl.PluralRules(this.locale);
    this.rel = new Intl.RelativeTimeFormat(this.locale, { numeric: "auto", style: "short" });
    this.list = new Intl.ListFormat(this.locale, { style: "long", type: "conjunction" });
    this.numbers = new Intl.NumberFormat(this.locale);
  }

  /**
   * The string for `key`, placeholders filled in; a plural entry picks its form by
   * `vars.count` (formatted as a number of this locale).
   * @param {CatalogueKey} key @param {Record<string, string|number>} [vars]
   * @returns {string}
   */
  t(key, vars = {}) {
    let entry;
    for (const c of this.chain) {
      entry = c[key];
      if (entry !== undefined) break;
    }
    if (entry === undefined) return key;
    let s;
    if (typeof entry === "string") s = entry;
    else {
      const n = Number(vars.count ?? 0);
      s = entry[this.plural.select(n)] ?? entry.other ?? Object.values(entry)[0] ?? key;
    }
    return s.replace(/\{(\w+)\}/g, (m, name) => {
      const v = vars[name];
      if (v === undefined) return m;
      return typeof v === "number" ? this.numbers.format(v) : String(v);
    });
  }

  /** A number in this locale. @param {number} n */
  num(n) {
    return this.numbers.format(n);
  }

  /** "Eve, Dana and 3 others" joined the way this language joins. @param {string[]} items */
  join(items) {
    return this.list.format(items);
  }

  /**
   * "just now", "5 min. ago", "vor 3 Std.", or a date a week on.
   * @param {number} ts ms since the epoch @param {number} [now]
   */
  ago(ts, now = Date.now()) {
    const s = Math.max(0, Math.round((now - ts) / 1000));
    if (s < 45) return this.t("time.now");
    const m = Math.round(s / 60);
    if (m < 60) return this.rel.format(-m, "minute");
    const h = Math.round(m / 60);
    if (h < 24) return this.rel.format(-h, "hour");
    const d = Math.round(h / 24);
    if (d < 7) return this.rel.format(-d, "day");
    return this.date(ts);
  }

  /** A date. @param {number} ts */
  date(ts) {
    return new Date(ts).toLocaleDateString(this.locale);
  }

  /**
   * A time of day, with the weekday when it is not today, as every "until" in the
   * components says it (one wording for the same moment everywhere).
   * @param {number} ts @param {number} [now]
   */
  when(ts, now = Date.now()) {
    const sameDay = new Date(ts).toDateString() === new Date(now).toDateString();
    return new Date(ts).toLocaleString(this.locale, {
      ...(sameDay ? {} : { weekday: "short" }), hour: "numeric", minute: "2-digit",
    });
  }

  /** "1 hour", "3 Stunden", "15分": a span in whole units of this locale. @param {number} seconds */
  duration(seconds) {
    /** @type {[number, string][]} */
    const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    const [size, unit] = units.find(([u]) => seconds >= u && seconds % u === 0) ?? [1, "second"];
    return new Intl.NumberFormat(this.locale, { style: "unit", unit, unitDisplay: "long" })
      .format(seconds / size);
  }
}

const NONE = {};
/** @type {Map<object, Map<string, Translator>>} by the app's overrides, then by locale */
const cache = new Map();

/**
 * The translator for a locale and an app's overrides (shared: one per pair).
 * @param {string} locale @param {Partial<Catalogue>|undefined} [overrides]
 * @returns {Translator}
 */
export function translator(locale, overrides) {
  const mine = overrides && Object.keys(overrides).length ? overrides : null;
  let byLocale = cache.get(mine ?? NONE);
  if (!byLocale) {
    byLocale = new Map();
    cache.set(mine ?? NONE, byLocale);
  }
  let t = byLocale.get(locale);
  if (!t) {
    t = new Translator(locale, mine ?? undefined);
    byLocale.set(locale, t);
  }
  return t;
}

/**
 * The locale for an element: its own `lang`, else the client's, else the nearest
 * `lang` above it, else the browser's.
 * @param {Element} el @param {{locale?: string}|null|undefined} client
 * @returns {string}
 */
export function localeFor(el, client) {
  return el.getAttribute("lang") || client?.locale || el.closest("[lang]")?.getAttribute("lang") ||
    globalThis.navigator?.language || "en";
}

/** The page's locale (for what a client says outside any element). @param {string} [given] */
export function pageLocale(given) {
  return given || globalThis.document?.documentElement?.lang || globalThis.navigator?.language || "en";
}
