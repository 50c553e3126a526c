// @ts-check
/**
 * Snooze in the notification center (issue 22): a menu of durations, the undo bar that
 * confirms a snooze, and the rows of the "Snoozed" list. Builders only: `<tocsin-bell>`
 * owns the state (which menu is open, what was snoozed last) and keyboard focus.
 * @module tocsin/components/snooze
 */
import { h } from "./common.js";

/** @typedef {import("../tocsin.js").Translator} Translator */
/** @typedef {import("../tocsin.js").TocsinNotification} N */

export const SNOOZE_STYLES = `
.snooze-menu { display: flex; flex-direction: column; gap: 2px; padding: 4px; margin: 0 8px 8px;
  border: 1px solid var(--_border); border-radius: 8px; background: var(--_bg); box-shadow: var(--_shadow);
  flex-basis: 100%; }
.snooze-menu button { text-align: start; border: none; background: transparent; border-radius: 6px;
  padding: 6px 10px; cursor: pointer; font-size: 13px; }
.snooze-menu button:hover, .snooze-menu button:focus-visible { background: var(--_hover-bg); }
.undo-bar { display: flex; align-items: center; gap: 12px; margin: 8px; padding: 8px 12px;
  border-radius: 8px; background: var(--_fg); color: var(--_bg); font-size: 13px; }
.undo-bar[hidden] { display: none; }
.undo-bar span { flex: 1; }
.undo-bar button { border: none; background: transparent; color: inherit; font: inherit;
  font-weight: 700; text-decoration: underline; cursor: pointer; padding: 4px 6px; }
.snoozed-until { font-size: 12px; color: var(--_muted); }
@media (max-width: 480px) {
  .snooze-menu button, .undo-bar button { min-height: 44px; font-size: 16px; }
}
`;

/**
 * The durations offered: an hour, three hours, tomorrow 08:00, a week.
 * @param {Translator} i18n @param {number} [now]
 * @returns {[string, number][]} label, until (ms since the epoch)
 */
export function snoozeChoices(i18n, now = Date.now()) {
  const tomorrow = new Date(now);
  tomorrow.setDate(tomorrow.getDate() + 1);
  tomorrow.setHours(8, 0, 0, 0);
  const span = (/** @type {number} */ s) => i18n.t("snooze.for", { duration: i18n.duration(s) });
  return [
    [span(3600), now + 3600_000],
    [span(3 * 3600), now + 3 * 3600_000],
    [i18n.t("snooze.tomorrow"), tomorrow.getTime()],
    [span(7 * 86400), now + 7 * 86400_000],
  ];
}

/**
 * The menu under a row. Its items carry the row's `key` and roles `snooze-0`…, so the
 * bell's redraw puts focus back on the same item.
 * @param {Translator} i18n @param {string} key @param {(until: number) => void} pick
 */
export function snoozeMenu(i18n, key, pick) {
  return h("div", { class: "snooze-menu", role: "menu", "aria-label": i18n.t("snooze.menu") },
    ...snoozeChoices(i18n).map(([label, until], i) => h("button", {
      type: "button", role: "menuitem", class: "snooze-choice", dataset: { key, role: `snooze-${i}` },
      onclick: () => pick(until),
    }, label)));
}

/**
 * A row of the "Snoozed" list: the notification, when it comes back, and "Wake now".
 * @param {Translator} i18n @param {N} n @param {() => void} wake
 */
export function snoozedRow(i18n, n, wake) {
  const key = `s:${n.id}`;
  return h("li", { class: "row read snoozed", dataset: { id: n.id } },
    h("div", { class: "open", dataset: { key, role: "open", id: n.id }, tabindex: "-1" },
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("span", { class: "text" },
        h("span", { class: "title", text: n.title }),
        n.body ? h("span", { class: "body", text: n.body }) : null,
        h("span", { class: "snoozed-until",
          text: i18n.t("row.snoozedUntil", { time: i18n.when(Number(n.snoozedUntil) || 0) }) }))),
    h("span", { class: "actions" }, h("button", {
      type: "button", class: "wake", dataset: { key, role: "wake" },
      "aria-label": i18n.t("row.unsnoozeLabel", { title: n.title }), onclick: wake,
    }, i18n.t("row.unsnooze"))));
}
