// @ts-check
/**
 * The preferences section of the notification center (docs/attention.md): per-type
 * channels and minimum priority, quiet hours with a time-zone picker (the browser's
 * zone by default), do-not-disturb for 1 hour / until tomorrow, urgent bypass.
 * Plain labelled form controls, so keyboards and screen readers get them for free.
 * @module tocsin/components/prefs-panel
 */
import { browserTimeZone, dndActive, dndUntil, timeZones } from "../lib/attention.js";
import { h } from "./common.js";

/** @typedef {import("../tocsin.js").Preferences} Preferences */
/** @typedef {import("../tocsin.js").TocsinClient} Client */

const PRIORITIES = ["low", "medium", "high", "urgent"];
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
`;

/** @param {number} until */
function untilText(until) {
  return new Date(until).toLocaleString(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
}

/**
 * Build the section; it loads the preferences and saves each change at once.
 * @param {Client} client @param {string[]} types the types seen in the inbox
 * @returns {HTMLElement}
 */
export function preferencesPanel(client, types) {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const section = h("section", { class: "prefs", "aria-label": "Notification preferences" },
    h("p", { class: "status", text: "Loading preferences…" }));
  /** @type {Preferences|null} */
  let prefs = null;

  /** @param {Preferences} next @param {string} said */
  async function save(next, said) {
    status.textContent = "Saving…";
    try {
      prefs = await client.savePreferences(next);
      status.textContent = said;
      render();
      section.dispatchEvent(new CustomEvent("tocsin-preferences", { bubbles: true, composed: true, detail: prefs }));
    } catch (err) {
      status.textContent = `Could not save: ${err instanceof Error ? err.message : err}`;
    }
  }

  function render() {
    const p = /** @type {Preferences} */ (prefs);
    // Do not disturb
    const dndOn = dndActive(p);
    const dnd = h("fieldset", null, h("legend", { text: "Do not disturb" }),
      h("p", { class: "status dnd-state", text: dndOn ? `On until ${untilText(Number(p.dnd?.until))}` : "Off" }),
      h("div", { class: "row2" },
        h("button", { type: "button", class: "dnd-hour", onclick: () =>
          save({ ...p, dnd: { until: dndUntil("hour") } }, "Do not disturb for 1 hour") }, "For 1 hour"),
        h("button", { type: "button", class: "dnd-tomorrow", onclick: () =>
          save({ ...p, dnd: { until: dndUntil("tomorrow") } }, "Do not disturb until tomorrow") }, "Until tomorrow"),
        dndOn ? h("button", { type: "button", class: "dnd-off", onclick: () =>
          save({ ...p, dnd: null }, "Do not disturb is off") }, "Turn off") : null));
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
    }, "Quiet hours saved");
    for (const el of [qOn, start, end, zone]) el.addEventListener("change", saveQuiet);
    const bypass = h("input", { type: "checkbox", class: "bypass", checked: p.urgentBypassesQuiet });
    bypass.addEventListener("change", () => save({ ...p,
      urgentBypassesQuiet: /** @type {HTMLInputElement} */ (bypass).checked }, "Saved"));
    const quiet = h("fieldset", null, h("legend", { text: "Quiet hours" }),
      h("label", null, qOn, "Silence notifications every day"),
      h("div", { class: "row2" }, h("label", null, "From", start), h("label", null, "to", end)),
      h("label", null, "Time zone", zone),
      h("label", null, bypass, "Urgent notifications still interrupt"));
    // Types
    const all = [...new Set([...types, ...Object.keys(p.types ?? {}).filter((t) => t !== "*")])].sort();
    const typeRows = all.map((t) => {
      const cur = p.types?.[t] ?? p.types?.["*"] ?? { channels: ["inbox", "interrupt"], minPriority: "low" };
      const alert = h("input", { type: "checkbox", class: "type-interrupt", checked: cur.channels.includes("interrupt") });
      const min = /** @type {HTMLSelectElement} */ (h("select", { class: "type-min", "aria-label": `Minimum priority to interrupt for ${t}` },
        ...PRIORITIES.map((x) => h("option", { value: x, text: `${x} and up` }))));
      min.value = cur.minPriority;
      const onChange = () => {
        const checked = /** @type {HTMLInputElement} */ (alert).checked;
        /** @type {import("../tocsin.js").Channel[]} */
        const channels = cur.channels.filter((c) => c !== "interrupt");
        if (checked) channels.push("interrupt");
        if (!channels.includes("inbox")) channels.unshift("inbox");
        save({ ...p, types: { ...p.types, [t]: { channels: /** @type {any} */ (channels),
          minPriority: /** @type {any} */ (min.value) } } }, `Saved for ${t}`);
      };
      alert.addEventListener("change", onChange);
      min.addEventListener("change", onChange);
      return h("div", { class: "row2", dataset: { type: t } },
        h("label", null, alert, `Interrupt for ${t}`), min);
    });
    const typesSet = h("fieldset", null, h("legend", { text: "By type" }),
      ...(typeRows.length ? typeRows : [h("p", { class: "status", text: "No types yet." })]));
    section.replaceChildren(dnd, quiet, typesSet, status);
  }

  client.preferences().then((p) => {
    prefs = p;
    render();
  }, (err) => {
    section.replaceChildren(h("p", { class: "status", role: "alert",
      text: `Could not load preferences: ${err instanceof Error ? err.message : err}` }));
  });
  return section;
}
