// @ts-check
/**
 * The preferences section of the notification center (docs/attention.md): per-type
 * channels (interrupt, push, email) and their priorities and delay, the email digest, quiet hours with a time-zone picker (the browser's
 * zone by default), do-not-disturb for 1 hour / until tomorrow, urgent bypass.
 * Plain labelled form controls, so keyboards and screen readers get them for free.
 * @module tocsin/components/prefs-panel
 */
import { browserTimeZone, DEFAULT_CHANNELS, dndActive, dndUntil, timeZones } from "../lib/attention.js";
import { h } from "./common.js";

/** @typedef {import("../tocsin.js").Preferences} Preferences */
/** @typedef {import("../tocsin.js").TocsinClient} Client */
/** @typedef {import("../tocsin.js").TypePreference} TypePreference */
/** @typedef {import("../tocsin.js").Channel} Channel */
/** @typedef {import("../tocsin.js").Priority} Priority */
/** @typedef {import("../tocsin.js").Translator} Translator */

/** @type {Priority[]} */
const PRIORITIES = ["low", "medium", "high", "urgent"];
/** @type {[string, import("../tocsin.js").CatalogueKey][]} */
const DIGESTS = [["off", "email.digestOff"], ["hourly", "email.digestHourly"], ["daily", "email.digestDaily"]];
const EMAIL_AFTER = [0, 300, 900, 3600, 86400];
const DEFAULT_EMAIL_AFTER = 900;

/** "at once", "after 15 minutes", "nach 1 Stunde". @param {Translator} i18n @param {number} s */
function emailAfterText(i18n, s) {
  return s === 0 ? i18n.t("email.atOnce") : i18n.t("email.after", { duration: i18n.duration(s) });
}

/**
 * What a type uses now: the user's choice, else their "*", else the publisher's
 * default, else the built-in one (inbox, interrupt, push).
 * @param {Preferences} p @param {string} t @returns {TypePreference}
 */
export function typePreference(p, t) {
  const d = /** @type {Record<string, TypePreference>|undefined} */ (p.defaults);
  return p.types?.[t] ?? p.types?.["*"] ?? d?.[t] ?? d?.["*"] ??
    { channels: [...DEFAULT_CHANNELS], minPriority: "low" };
}

/**
 * One type's controls: interrupt / push / email, minimum priority, push from which
 * priority, email after how long unread. Each change saves the whole type at once.
 * @param {Preferences} p @param {string} t
 * @param {(next: Preferences, said: string) => void} save
 * @param {Translator} i18n
 */
function typeRow(p, t, save, i18n) {
  const cur = typePreference(p, t);
  /** @param {Channel} c @param {string} cls @param {string} label */
  const box = (c, cls, label) => {
    const input = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", class: cls,
      checked: cur.channels.includes(c) }));
    return { input, label: h("label", null, input, label) };
  };
  const alert = box("interrupt", "type-interrupt", i18n.t("type.interrupt", { type: t }));
  const push = box("push", "type-push", i18n.t("type.push"));
  const mail = box("email", "type-email", i18n.t("type.email"));
  /** @param {string} cls @param {string} label @param {string} value */
  const prio = (cls, label, value) => {
    const sel = /** @type {HTMLSelectElement} */ (h("select", { class: cls, "aria-label": label },
      ...PRIORITIES.map((x) => h("option", { value: x,
        text: i18n.t("type.andUp", { priority: i18n.t(`priority.${x}`) }) }))));
    sel.value = value;
    return sel;
  };
  const min = prio("type-min", i18n.t("type.minLabel", { type: t }), cur.minPriority);
  const pushMin = prio("type-push-min", i18n.t("type.pushMinLabel", { type: t }), cur.pushMinPriority ?? "high");
  const after = cur.emailAfter ?? DEFAULT_EMAIL_AFTER;
  const emailAfter = /** @type {HTMLSelectElement} */ (h("select", { class: "type-email-after",
    "aria-label": i18n.t("type.emailAfterLabel", { type: t }) },
  ...(EMAIL_AFTER.includes(after) ? EMAIL_AFTER : [...EMAIL_AFTER, after])
    .map((s) => h("option", { value: String(s), text: emailAfterText(i18n, s) }))));
  emailAfter.value = String(after);
  pushMin.disabled = !push.input.checked;
  emailAfter.disabled = !mail.input.checked;
  const onChange = () => {
    /** @type {Channel[]} */
    const channels = ["inbox"];
    if (alert.input.checked) channels.push("interrupt");
    if (push.input.checked) channels.push("push");
    if (mail.input.checked) channels.push("email");
    /** @type {TypePreference} */
    const next = {
      ...cur, channels, minPriority: /** @type {Priority} */ (min.value),
      pushMinPriority: /** @type {Priority} */ (pushMin.value), emailAfter: Number(emailAfter.value),
    };
    save({ ...p, types: { ...p.types, [t]: next } }, i18n.t("prefs.savedFor", { type: t }));
  };
  for (const el of [alert.input, push.input, mail.input, min, pushMin, emailAfter]) el.addEventListener("change", onChange);
  return h("div", { class: "type-prefs", dataset: { type: t } },
    h("div", { class: "row2" }, alert.label, min),
    h("div", { class: "row2" }, push.label, pushMin),
    h("div", { class: "row2" }, mail.label, emailAfter));
}
export const PREFS_STYLES = `
.prefs { padding: 8px 14px 12px; border-bottom: 1px solid var(--_border); display: grid; gap: 10px; }
.prefs fieldset { border: 1px solid var(--_border); border-radius: 8px; padding: 6px 10px; margin: 0;
  display: grid; gap: 6px; }
.prefs legend { font-weight: 600; font-size: 13px; }
.prefs label { font-size: 13px; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.prefs .row2 { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
.prefs button { border: 1px solid var(--_border); background: transparent; color: inherit;
  border-radius: 6px; padding: 4px 8px; cursor: pointer; font: inherit; font-size: 13px; }
.prefs .status { font-size: 12px; color: var(--_muted); min-height: 1em; }
.prefs .type-prefs { display: grid; gap: 4px; padding: 4px 0; border-top: 1px dashed var(--_border); }
.prefs .type-prefs:first-of-type { border-top: none; }
/* A checkbox stays on its text's first line; the text wraps beside it. */
.prefs label:has(> input[type="checkbox"]) { flex-wrap: nowrap; }
.prefs input[type="checkbox"] { flex: none; }
/* A type's rows: the label wraps in its column, its select stays beside it. */
.prefs .type-prefs .row2 { display: grid; grid-template-columns: minmax(0, 1fr) auto; }
/* Phones: 44 px targets, 16 px text in every control (iOS zooms into smaller inputs). */
@media (max-width: 480px) {
  .prefs label, .prefs legend { font-size: 16px; }
  .prefs label { min-height: 44px; }
  .prefs :is(button, select, input:not([type="checkbox"])) { min-height: 44px; font-size: 16px; }
  .prefs input[type="checkbox"] { width: 22px; height: 22px; margin: 0; }
  .prefs .type-prefs .row2 select { max-width: 46vw; }
}
`;

/**
 * Build the section; it loads the preferences and saves each change at once.
 * @param {Client} client @param {string[]} types the types seen in the inbox
 * @param {Translator} [i18n] the words (default: the client's)
 * @returns {HTMLElement}
 */
export function preferencesPanel(client, types, i18n = client.i18n()) {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const section = h("section", { class: "prefs", "aria-label": i18n.t("prefs.label") },
    h("p", { class: "status", text: i18n.t("prefs.loading") }));
  /** @type {Preferences|null} */
  let prefs = null;

  /** @param {Preferences} next @param {string} said */
  async function save(next, said) {
    status.textContent = i18n.t("prefs.saving");
    try {
      prefs = await client.savePreferences(next);
      status.textContent = said;
      render();
      section.dispatchEvent(new CustomEvent("tocsin-preferences", { bubbles: true, composed: true, detail: prefs }));
    } catch (err) {
      status.textContent = i18n.t("prefs.saveFailed", { error: err instanceof Error ? err.message : String(err) });
    }
  }

  function render() {
    const p = /** @type {Preferences} */ (prefs);
    // Do not disturb
    const dndOn = dndActive(p);
    const dnd = h("fieldset", null, h("legend", { text: i18n.t("dnd.title") }),
      h("p", { class: "status dnd-state",
        text: dndOn ? i18n.t("dnd.onUntil", { time: i18n.when(Number(p.dnd?.until)) }) : i18n.t("dnd.off") }),
      h("div", { class: "row2" },
        h("button", { type: "button", class: "dnd-hour", onclick: () =>
          save({ ...p, dnd: { until: dndUntil("hour") } }, i18n.t("dnd.savedHour")) }, i18n.t("dnd.hour")),
        h("button", { type: "button", class: "dnd-tomorrow", onclick: () =>
          save({ ...p, dnd: { until: dndUntil("tomorrow") } }, i18n.t("dnd.savedTomorrow")) }, i18n.t("dnd.tomorrow")),
        dndOn ? h("button", { type: "button", class: "dnd-off", onclick: () =>
          save({ ...p, dnd: null }, i18n.t("dnd.savedOff")) }, i18n.t("dnd.turnOff")) : null));
    // Quiet hours
    const q = p.quietHours;
    const qOn = h("input", { type: "checkbox", class: "quiet-on", checked: !!q });
    const start = h("input", { type: "time", class: "quiet-start", value: q?.start ?? "22:00" });
    const end = h("input", { type: "time", class: "quiet-end", value: q?.end ?? "07:00" });
    const zone = /** @type {HTMLSelectElement} */ (h("select", { class: "quiet-zone" }));
    const want = q?.timezone ?? browserTimeZone();
    const zones = timeZones();
    if (!zones.includes(want)) zones.unshift(want);
    zone.replaceChildren(...zones.map((z) => h("option", { value: z, text: z })));
    zone.value = want;
    const saveQuiet = () => save({
      ...p,
      quietHours: /** @type {HTMLInputElement} */ (qOn).checked ? {
        ...(q ?? {}), timezone: zone.value,
        start: /** @type {HTMLInputElement} */ (start).value || "22:00",
        end: /** @type {HTMLInputElement} */ (end).value || "07:00",
      } : null,
    }, i18n.t("quiet.saved"));
    for (const el of [qOn, start, end, zone]) el.addEventListener("change", saveQuiet);
    const bypass = h("input", { type: "checkbox", class: "bypass", checked: p.urgentBypassesQuiet });
    bypass.addEventListener("change", () => save({ ...p,
      urgentBypassesQuiet: /** @type {HTMLInputElement} */ (bypass).checked }, i18n.t("prefs.saved")));
    const quiet = h("fieldset", null, h("legend", { text: i18n.t("quiet.title") }),
      h("label", null, qOn, i18n.t("quiet.on")),
      h("div", { class: "row2" }, h("label", null, i18n.t("quiet.from"), start), h("label", null, i18n.t("quiet.to"), end)),
      h("label", null, i18n.t("quiet.zone"), zone),
      h("label", null, bypass, i18n.t("quiet.bypass")));
    // Types: which channels each type uses (inbox always), and from which priority.
    const all = [...new Set([...types, ...Object.keys(p.types ?? {}).filter((t) => t !== "*")])].sort();
    const typeRows = all.map((t) => typeRow(p, t, (next, said) => save(next, said), i18n));
    const typesSet = h("fieldset", null, h("legend", { text: i18n.t("types.title") }),
      ...(typeRows.length ? typeRows : [h("p", { class: "status", text: i18n.t("types.none") })]));
    // Email digest (per user)
    const digest = /** @type {HTMLSelectElement} */ (h("select", { class: "email-digest" },
      ...DIGESTS.map(([v, label]) => h("option", { value: v, text: i18n.t(label) }))));
    digest.value = p.emailDigest ?? "off";
    digest.addEventListener("change", () => save({ ...p,
      emailDigest: /** @type {import("../tocsin.js").EmailDigest} */ (digest.value) }, i18n.t("email.digestSaved")));
    const email = h("fieldset", null, h("legend", { text: i18n.t("email.title") }),
      h("label", null, i18n.t("email.send"), digest));
    section.replaceChildren(dnd, quiet, typesSet, email, status);
  }

  // One source of truth (issue 22): the client's `state.preferences`, which a save
  // anywhere (the page's own DND control, another tab, another device) replaces.
  // Redrawn in place: the focused control keeps focus.
  const unsubscribe = client.subscribe((s) => {
    if (!section.isConnected && prefs) {
      unsubscribe();
      return;
    }
    if (!prefs || !s.preferences || s.preferences === prefs) return;
    prefs = s.preferences;
    const root = /** @type {Document|ShadowRoot} */ (section.getRootNode());
    const active = /** @type {HTMLElement|null} */ (root.activeElement);
    const cls = active && section.contains(active) ? active.className.split(" ")[0] : "";
    const said = status.textContent;
    render();
    status.textContent = said;
    if (cls) /** @type {HTMLElement|null} */ (section.querySelector(`.${CSS.escape(cls)}`))?.focus();
  });
  client.preferences().then((p) => {
    prefs = p;
    render();
  }, (err) => {
    section.replaceChildren(h("p", { class: "status", role: "alert",
      text: i18n.t("prefs.loadFailed", { error: err instanceof Error ? err.message : String(err) }) }));
  });
  return section;
}
