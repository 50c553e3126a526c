// @ts-check
/**
 * `<tocsin-bell>`: a bell button with the unread badge that opens the notification
 * center (history with infinite scroll, grouping, filters, keyboard navigation).
 *
 * Attributes: `theme` ("light" | "dark"; default follows the OS), `align`
 * ("right" | "left": which edge of the bell the center lines up with), `push-worker`
 * (the service worker for "Notify me when the tab is closed", on the page's origin;
 * default: the server's /static/tocsin/sw.js, which only works when the page is on
 * the server's origin).
 * Parts: `button`, `badge`, `panel`.
 *
 * Longer than the other modules on purpose: one element's template, styles and
 * keyboard model (focus trap, roving selection, Escape) read best together; the data
 * and actions it renders live in ../lib/.
 * @module tocsin/components/bell
 */
import { groupActors } from "../lib/attention.js";
import { ackedText, holderText, incidentOf } from "../lib/incidents.js";
import { pushState, pushSupported, subscribePush, unsubscribePush } from "../lib/push.js";
import { safeUrl } from "../tocsin.js";
import { h, icon, ICON_BELL, ICON_CHECK, ICON_CLOSE, THEME, TocsinElement } from "./common.js";
import { preferencesPanel, PREFS_STYLES } from "./prefs-panel.js";
import { snoozedRow, snoozeMenu, SNOOZE_STYLES } from "./snooze.js";

const ICON_GEAR = "M19.14 12.94c.04-.3.06-.61.06-.94 0-.32-.02-.64-.07-.94l2.03-1.58a.49.49 0 0 0 .12-.61l-1.92-3.32a.49.49 0 0 0-.59-.22l-2.39.96c-.5-.38-1.03-.7-1.62-.94l-.36-2.54a.48.48 0 0 0-.48-.41h-3.84a.47.47 0 0 0-.47.41l-.36 2.54c-.59.24-1.13.57-1.62.94l-2.39-.96a.49.49 0 0 0-.59.22L2.74 8.87a.47.47 0 0 0 .12.61l2.03 1.58c-.05.3-.09.63-.09.94s.02.64.07.94l-2.03 1.58a.49.49 0 0 0-.12.61l1.92 3.32c.12.22.37.29.59.22l2.39-.96c.5.38 1.03.7 1.62.94l.36 2.54c.05.24.24.41.48.41h3.84c.24 0 .44-.17.47-.41l.36-2.54c.59-.24 1.13-.56 1.62-.94l2.39.96c.22.08.47 0 .59-.22l1.92-3.32a.49.49 0 0 0-.12-.61l-2.01-1.58zM12 15.6a3.6 3.6 0 1 1 0-7.2 3.6 3.6 0 0 1 0 7.2z";
const ICON_BACK = "M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z";
const ICON_MORE = "M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z";
const ICON_LESS = "M7.4 15.4 12 10.8l4.6 4.6L18 14l-6-6-6 6z";
// "Mark as unread": an envelope, not the check that marks as read.
const ICON_UNREAD = "M20 4H4a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm0 4-8 5-8-5V6l8 5 8-5z";
const ICON_SNOOZE = "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm.5-13H11v6l5.2 3.2.8-1.3-4.5-2.7z";

/** @typedef {import("../tocsin.js").TocsinNotification} N */

const STYLES = `${THEME}
:host { position: relative; display: inline-block; color: var(--_fg); }
.bell {
  position: relative; display: inline-grid; place-items: center; width: 40px; height: 40px;
  border-radius: 50%; border: 1px solid transparent; background: transparent; cursor: pointer;
  color: inherit;
}
.bell:hover { background: var(--_hover-bg); }
.badge {
  /* On the bell's corner, ringed in the background colour: a two-digit count at 18 px
     over the icon's middle hid most of the bell. */
  position: absolute; top: -3px; inset-inline-end: -7px; min-width: 16px; height: 16px; padding: 0 4px;
  border-radius: 8px; background: var(--_badge-bg); color: var(--_badge-fg);
  box-shadow: 0 0 0 2px var(--_bg);
  font-size: 10px; font-weight: 700; line-height: 16px; text-align: center;
}
.badge[hidden] { display: none; }
.panel {
  position: absolute; top: calc(100% + 8px); inset-inline-end: 0; z-index: 1000;
  width: min(400px, calc(100vw - 16px)); max-height: min(72vh, 640px);
  display: flex; flex-direction: column; background: var(--_bg); color: var(--_fg);
  border: 1px solid var(--_border); border-radius: var(--_radius); box-shadow: var(--_shadow);
  overflow: hidden; overscroll-behavior: contain; text-align: start;
}
:host([align="left"]) .panel { right: auto; left: 0; }
/* opened towards the side with room: the inline start (mirrors under dir="rtl") */
.panel.flip { inset-inline-end: auto; inset-inline-start: 0; }
.panel[hidden] { display: none; }
.head { display: flex; align-items: center; gap: 8px; padding: 12px 12px 8px 16px; }
.head h2 { margin: 0; font-size: 16px; flex: 1; }
.head button, .perm button {
  border: 1px solid var(--_border); background: transparent; border-radius: 6px;
  padding: 4px 8px; cursor: pointer; font-size: 13px;
}
.head button:hover, .perm button:hover { background: var(--_hover-bg); }
.head button:disabled { opacity: .5; cursor: default; }
.head .close, .head .prefs-btn { border: none; display: inline-grid; place-items: center; padding: 4px; }
/* One line in a 400 px center: Preferences is a gear (named by its hidden text and
   title), the other words never wrap inside their button. */
.head button { white-space: nowrap; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; padding: 0 16px 10px; font-size: 13px;
  align-items: center; border-bottom: 1px solid var(--_border); }
.filters select { font: inherit; font-size: 13px; padding: 2px 4px; border-radius: 6px;
  border: 1px solid var(--_border); background: var(--_bg); color: var(--_fg); }
.filters label { display: inline-flex; gap: 4px; align-items: center; }
.perm { padding: 6px 12px 6px 16px; font-size: 13px; color: var(--_muted); border-bottom: 1px solid var(--_border);
  display: flex; align-items: center; gap: 8px; }
.perm:empty { display: none; }
.perm p { margin: 0; flex: 1; }
.perm .perm-dismiss { margin-left: auto; border: none; color: var(--_muted); }
.perm .push-error { color: var(--_warn-fg); }
.push-perm { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; padding: 0 14px 12px; font-size: 13px; }
.push-perm:empty { display: none; }
.push-perm button { border: 1px solid var(--_border); background: transparent; border-radius: 6px;
  padding: 4px 8px; cursor: pointer; font-size: 13px; }
.push-perm button[aria-pressed="true"] { border-color: var(--_accent); color: var(--_accent); }
.push-perm .push-state { font-size: 12px; }
.push-perm .push-error { flex-basis: 100%; color: var(--_warn-fg); }
.error { padding: 8px 16px; font-size: 13px; background: var(--_warn-bg); color: var(--_warn-fg); }
.error:empty { display: none; }
.scroll { overflow-y: auto; flex: 1 1 auto; min-height: 0; overscroll-behavior: contain; }
ul { list-style: none; margin: 0; padding: 0; }
.row { display: flex; align-items: stretch; border-bottom: 1px solid var(--_border); }
.row.unread { background: var(--_unread-bg); }
.open {
  flex: 1; min-width: 0; display: grid; grid-template-columns: 10px 1fr; column-gap: 10px;
  text-align: start; border: none; background: transparent; padding-block: 10px;
  padding-inline: 14px 8px; cursor: pointer;
}
/* The whole row lights up, action buttons included. */
.row:hover { background: var(--_hover-bg); }
/* Inset, so the scrolling list does not clip the ring on the left or above the first row. */
.open:focus-visible { outline-offset: -3px; }
.dot { width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; background: transparent; }
.unread > .open .dot { background: var(--_accent); }
/* The priority ring marks unread rows only: on a read row it looked like an unread dot. */
.row.unread.prio-urgent .dot { box-shadow: 0 0 0 2px var(--_urgent); }
.row.unread.prio-high .dot { box-shadow: 0 0 0 2px var(--_high); }
.text { min-width: 0; display: flex; flex-direction: column; gap: 2px; }
.title { font-size: 14px; font-weight: 500; overflow-wrap: anywhere; }
.unread > .open .title { font-weight: 700; }
.body { font-size: 13px; color: var(--_muted); overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
.meta { font-size: 12px; color: var(--_muted); display: flex; gap: 6px; flex-wrap: wrap; }
.tag { padding: 0 6px; border-radius: 8px; border: 1px solid var(--_border); }
.tag.urgent { color: var(--_urgent); border-color: var(--_urgent); }
.tag.high { color: var(--_high); border-color: var(--_high); }
.actions { display: flex; flex-direction: column; justify-content: center; gap: 2px; padding: 4px; }
.actions button { border: none; background: transparent; border-radius: 6px; padding: 4px;
  display: inline-grid; place-items: center; cursor: pointer; color: var(--_muted); }
.actions button:hover { background: var(--_hover-bg); color: var(--_fg); }
.row { flex-wrap: wrap; }
.incident-line { order: 1; flex-basis: 100%; padding: 0 12px 10px 34px; }
.incident-line .ack { cursor: pointer; background: transparent; border-radius: 6px;
  border: 1px solid var(--_urgent); color: var(--_urgent); font-size: 12px;
  font-weight: 600; padding: 2px 8px; }
.incident-line .ack:hover { background: var(--_urgent); color: var(--_urgent-fg); }
.actions button.ack { border: 1px solid var(--_urgent); color: var(--_urgent); font-size: 12px;
  font-weight: 600; padding: 2px 6px; }
.actions button.ack:hover { background: var(--_urgent); color: var(--_urgent-fg); }
.meta .acked { font-weight: 600; }
li.group { display: block; border-bottom: 1px solid var(--_border); }
li.group > .row { border-bottom: none; }
.count { font-size: 12px; color: var(--_muted); }
.expand { display: inline-flex; align-items: center; gap: 2px; font-size: 12px; color: var(--_accent);
  font-weight: 600; }
.children { border-top: 1px dashed var(--_border); padding-inline-start: 18px; }
.children[hidden] { display: none; }
.children .row:last-child { border-bottom: none; }
.empty, .loading { padding: 24px 16px; text-align: center; color: var(--_muted); font-size: 14px; margin: 0; }
.empty[hidden], .loading[hidden] { display: none; }
.sentinel { height: 1px; }
.backdrop { display: none; }
/* Preferences replace the list in the same frame: the header stays, the section is the
   one scrolling region, and its scroll never chains to the page behind. */
.prefs-slot { flex: 1 1 auto; min-height: 0; overflow-y: auto; overscroll-behavior: contain; }
.prefs-slot[hidden] { display: none; }
.panel.prefs-open > :is(.filters, .perm, .error, .scroll) { display: none; }
.head .back { display: none; border: none; padding: 4px; place-items: center; }
.panel.prefs-open .head .back { display: inline-grid; }
.panel.prefs-open .head :is(.prefs-btn, .all) { display: none; }
/* Phones: the center is a full-width sheet from the bottom edge, every control a
   44 px touch target. */
@media (max-width: 480px) {
  .panel, :host([align="left"]) .panel, .panel.flip {
    position: fixed; top: auto; left: 0; right: 0; bottom: 0; width: 100%;
    max-height: min(85vh, 85dvh); border-radius: var(--_radius) var(--_radius) 0 0;
    border-left: none; border-right: none; border-bottom: none;
    padding-bottom: env(safe-area-inset-bottom);
  }
  .bell { width: 44px; height: 44px; }
  /* The sheet's header is one line: a long title gives way (ellipsis) before any
     button wraps. */
  .head { padding: 6px 4px 4px 12px; gap: 4px; }
  .head h2 { min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .head .prefs-btn { min-width: 44px; }
  .head button, .perm button, .push-perm button { min-height: 44px; padding: 4px 10px; }
  .push-perm { font-size: 16px; }
  .push-perm button { font-size: 16px; }
  .filters select { font-size: 16px; }
  /* Dims the page and takes its taps; with the page's scrolling locked (show()), nothing
     behind the sheet moves or peeks out above it. */
  .backdrop:not([hidden]) { display: block; position: fixed; inset: 0; z-index: 999;
    background: rgba(16, 24, 40, .45); }
  .head .close { min-width: 44px; }
  /* Filters as one row that scrolls sideways, not two lines of 44 px controls. */
  .filters { gap: 4px 12px; flex-wrap: nowrap; overflow-x: auto; overscroll-behavior-x: contain;
    padding-top: 4px; padding-right: 12px; }
  .filters > * { flex: none; }
  .filters select { min-height: 44px; }
  .filters label { min-height: 44px; }
  .filters input { width: 20px; height: 20px; }
  .actions { flex-direction: row; align-items: center; padding: 0 4px 0 0; gap: 0; }
  .actions button { min-width: 44px; min-height: 44px; }
  .open { min-height: 56px; }
}
@media (pointer: coarse) and (min-width: 481px) {
  .bell, .actions button, .head .close { min-width: 44px; min-height: 44px; }
}
${PREFS_STYLES}
${SNOOZE_STYLES}
.prefs-btn { font-size: 13px; }
.group-by { font-size: 12px; }
@media (prefers-reduced-motion: no-preference) {
  .panel:not([hidden]) { animation: pop .12s ease-out; }
  @keyframes pop { from { opacity: 0; transform: translateY(-4px); } }
}
`;

const PROMPT_KEY = "tocsin:notifications-prompt";
/** Whether the user answered the notifications prompt with "Not now" in this browser. */
function promptDismissed() {
  try {
    return localStorage.getItem(PROMPT_KEY) === "dismissed";
  } catch {
    return false;
  }
}
function dismissPrompt() {
  try {
    localStorage.setItem(PROMPT_KEY, "dismissed");
  } catch { /* private mode: for this page only */ }
}

/** Phones: the same breakpoint as the styles' sheet rules. */
const PHONE = matchMedia("(max-width: 480px)");

/** Distinct values, first-seen order. @template T @param {T[]} xs @returns {T[]} */
function unique(xs) {
  return [...new Set(xs)];
}

/**
 * A title said of several people: "Eve liked your post" (actor "Eve") with `who` "Eve
 * and Dana" is "Eve and Dana liked your post". Null when the title does not start with
 * its actor (the publisher's wording is then kept).
 * @param {string} title @param {string|null|undefined} actor @param {string} who
 * @returns {string|null}
 */
export function phraseTitle(title, actor, who) {
  if (!actor || !who || !title.startsWith(actor)) return null;
  return `${who}${title.slice(actor.length)}`;
}

/**
 * The one header of rows the center groups by `groupKey`: "Eve and Dana liked your
 * post", whatever order they came in; "<newest title> (and 2 more)" when titles do
 * not start with their actor. People are counted once (the server's `people` too).
 * @param {import("../tocsin.js").Translator} i18n @param {N[]} items newest first
 */
export function groupTitle(i18n, items) {
  const newest = items[0];
  const actors = unique(items.flatMap((i) => [i.actor, ...(i.group?.actors ?? [])])
    .filter((a) => !!a).map(String));
  const people = Math.max(actors.length, ...items.map((i) => Number(i.group?.people) || 0));
  const shown = actors.slice(0, people > 3 ? 2 : 3);
  const who = i18n.join(people > shown.length
    ? [...shown, i18n.t("group.others", { count: people - shown.length })] : shown);
  return phraseTitle(newest.title, newest.actor, who) ??
    i18n.t("group.more", { title: newest.title, count: items.length - 1 });
}

export class TocsinBell extends TocsinElement {
  constructor() {
    super();
    /** @type {import("../tocsin.js").Translator|null} the words the labels are in */
    this.labelled = null;
    this.expanded = false;
    this.filters = { unread: false, type: "", source: "", snoozed: false };
    /** @type {string|null} the row whose snooze menu is open */
    this.snoozeFor = null;
    /** @type {N[]|null} the "Snoozed" list, read when that filter is on */
    this.snoozedItems = null;
    this.snoozedSeq = 0;
    /** @type {{id: string, timer: ReturnType<typeof setTimeout>|undefined}} the last snooze, undoable */
    this.undo = { id: "", timer: undefined };
    /** @type {Set<string>} groups the user expanded */
    this.openGroups = new Set();
    /** @type {import("../tocsin.js").ClientState|null} */
    this.state = null;
    this.typeKey = "";
    this.sourceKey = "";
    /** @type {{state: string, busy: boolean, error: string, seq: number, key: Promise<boolean>|null}} */
    this.push = { state: "", busy: false, error: "", seq: 0, key: null };
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.tick = undefined;
    this.onDocPointer = (/** @type {Event} */ e) => {
      if (this.expanded && !e.composedPath().includes(this)) this.hide(false);
    };
    // Escape closes the center even if focus somehow left it (the shadow root's key
    // handler only hears keys from inside).
    // "+N more" under the toasts of this client: the center lists them all.
    this.onMore = (/** @type {Event} */ e) => {
      if (/** @type {any} */ (e.target)?.client !== this.client || !this.client) return;
      e.preventDefault();
      this.show();
    };
    /** @type {string|null} the page's own overflow while a phone sheet locks it */
    this.pageOverflow = null;
    this.onDocKey = (/** @type {KeyboardEvent} */ e) => {
      if (this.expanded && e.key === "Escape" && !e.composedPath().includes(this)) this.hide();
    };
  }

  setup() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: "open" });
    const style = h("style");
    style.textContent = STYLES;
    this.badge = h("span", { class: "badge", part: "badge", "aria-hidden": "true", hidden: true });
    this.button = h("button", {
      class: "bell", part: "button", type: "button", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": "panel", "aria-label": this.t("bell.label"),
      onclick: () => this.toggle(),
    }, icon(ICON_BELL, 22), this.badge);
    this.closeBtn = null;
    this.markAll = h("button", { type: "button", class: "all", onclick: () => this.client?.markAllRead() },
      this.t("bell.markAll"));
    const close = h("button", {
      type: "button", class: "close", "aria-label": this.t("bell.close"), onclick: () => this.hide(),
    }, icon(ICON_CLOSE, 18));
    this.closeBtn = close;
    this.prefsSlot = h("div", { id: "tocsin-prefs", class: "prefs-slot", hidden: true });
    // The way back to the list while the preferences fill the center.
    this.backBtn = h("button", {
      type: "button", class: "back", "aria-label": this.t("bell.back"), title: this.t("bell.back"),
      onclick: () => this.togglePrefs(),
    }, icon(ICON_BACK, 18));
    this.titleEl = h("h2", { id: "tocsin-title", text: this.t("bell.title") });
    this.prefsBtn = h("button", {
      type: "button", class: "prefs-btn", "aria-expanded": "false", "aria-controls": "tocsin-prefs",
      onclick: () => this.togglePrefs(), title: this.t("bell.preferences"),
    }, icon(ICON_GEAR, 18), (this.prefsText = h("span", { class: "sr-only", text: this.t("bell.preferences") })));
    this.unreadOnly = h("input", { type: "checkbox", class: "unread-filter", onchange: () => this.setFilter() });
    this.typeSel = h("select", { "aria-label": this.t("bell.filterType"), onchange: () => this.setFilter() });
    this.sourceSel = h("select", { "aria-label": this.t("bell.filterSource"), onchange: () => this.setFilter() });
    this.perm = h("div", { class: "perm" });
    this.pushRow = h("div", { class: "push-perm" });
    this.error = h("div", { class: "error", role: "alert" });
    this.list = h("ul", { class: "list", "aria-label": this.t("bell.list") });
    this.sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
    this.empty = h("p", { class: "empty", hidden: true });
    this.loadingEl = h("p", { class: "loading", hidden: true, role: "status", text: this.t("bell.loading") });
    this.scroller = h("div", { class: "scroll" }, this.list, this.loadingEl, this.empty, this.sentinel);
    this.snoozedOnly = h("input", { type: "checkbox", class: "snoozed-filter", onchange: () => this.setFilter() });
    // "Snoozed until … · Undo": the confirmation of a snooze, in the center where it
    // was made (toasts are hidden while the center is open).
    this.undoBar = h("div", { class: "undo-bar", role: "status", hidden: true });
    this.panel = h("div", {
      id: "panel", class: "panel", part: "panel", role: "dialog", "aria-modal": "true",
      "aria-labelledby": "tocsin-title", hidden: true,
    },
    h("div", { class: "head" }, this.backBtn, this.titleEl, this.prefsBtn, this.markAll, close),
    this.prefsSlot,
    (this.filtersEl = h("div", { class: "filters", role: "group", "aria-label": this.t("bell.filters") },
      h("label", null, this.unreadOnly, (this.unreadText = h("span", { text: this.t("bell.unreadOnly") }))),
      h("label", null, this.snoozedOnly, (this.snoozedText = h("span", { text: this.t("bell.snoozedOnly") }))),
      this.typeSel, this.sourceSel)),
    this.perm, this.error, this.scroller, this.undoBar);
    this.backdrop = h("div", { class: "backdrop", "aria-hidden": "true", hidden: true,
      onclick: () => this.hide() });
    root.append(style, this.button, this.backdrop, this.panel);
    root.addEventListener("keydown", (e) => {
      if (this.expanded) this.onKey(/** @type {KeyboardEvent} */ (e));
    });
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.maybeLoadMore();
    }, { root: this.scroller, rootMargin: "120px" });
    this.observer.observe(this.sentinel);
  }

  connectedCallback() {
    super.connectedCallback();
    document.addEventListener("pointerdown", this.onDocPointer, true);
    document.addEventListener("keydown", this.onDocKey);
    document.addEventListener("tocsin-more", this.onMore);
  }

  teardown() {
    document.removeEventListener("pointerdown", this.onDocPointer, true);
    document.removeEventListener("keydown", this.onDocKey);
    document.removeEventListener("tocsin-more", this.onMore);
    this.unlockPage();
    clearInterval(this.tick);
  }

  /** Open the notification center and move focus into it. */
  show() {
    if (this.expanded || !this.panel) return;
    this.expanded = true;
    // Open towards the side with room: a bell near the left edge opens rightwards.
    const rect = this.getBoundingClientRect();
    const need = Math.min(400, innerWidth - 16) + 8;
    const rtl = getComputedStyle(this).direction === "rtl";
    this.panel.classList.toggle("flip", rtl ? innerWidth - rect.left < need : rect.right < need);
    this.panel.hidden = false;
    if (PHONE.matches) {
      if (this.backdrop) this.backdrop.hidden = false;
      this.pageOverflow = document.documentElement.style.overflow;
      document.documentElement.style.overflow = "hidden";
    }
    this.panel.scrollTop = 0;
    this.button?.setAttribute("aria-expanded", "true");
    this.render();
    this.refreshPush();
    this.tick = setInterval(() => this.render(), 30000);
    this.focusFallback();
    this.maybeLoadMore();
    this.dispatchEvent(new CustomEvent("tocsin-open", { bubbles: true, composed: true }));
  }

  /** Close the center; focus returns to the bell unless `refocus` is false. */
  hide(refocus = true) {
    if (!this.expanded || !this.panel) return;
    this.expanded = false;
    this.snoozeFor = null;
    // Reopened, the center shows its list from the top, never a half-scrolled
    // preferences section.
    if (this.prefsSlot && !this.prefsSlot.hidden) this.togglePrefs();
    this.panel.hidden = true;
    this.unlockPage();
    this.button?.setAttribute("aria-expanded", "false");
    clearInterval(this.tick);
    if (refocus) this.button?.focus();
    this.dispatchEvent(new CustomEvent("tocsin-close", { bubbles: true, composed: true }));
  }

  /** Give the page its scrolling back (the phone sheet took it). */
  unlockPage() {
    if (this.backdrop) this.backdrop.hidden = true;
    if (this.pageOverflow === null) return;
    document.documentElement.style.overflow = this.pageOverflow;
    this.pageOverflow = null;
  }

  toggle() {
    if (this.expanded) this.hide();
    else this.show();
  }

  setFilter() {
    const snoozed = !!this.snoozedOnly?.checked;
    if (snoozed && !this.filters.snoozed) this.loadSnoozed();
    this.filters = {
      unread: !!this.unreadOnly?.checked,
      type: this.typeSel?.value ?? "",
      source: this.sourceSel?.value ?? "",
      snoozed,
    };
    this.render();
    this.maybeLoadMore();
  }

  /** @param {import("../tocsin.js").ClientState} s */
  update(s) {
    this.state = s;
    this.relabel();
    const n = s.unreadCount;
    if (this.badge && this.button) {
      this.badge.hidden = n === 0;
      this.badge.textContent = n > 99 ? `${this.i18n.num(99)}+` : this.i18n.num(n);
      this.button.setAttribute("aria-label", n ? this.t("bell.labelUnread", { count: n }) : this.t("bell.labelNone"));
    }
    if (this.expanded) {
      this.render();
      this.maybeLoadMore();
    }
  }

  maybeLoadMore() {
    const s = this.state;
    if (!this.expanded || !s || !s.hasMore || s.loading || !this.sentinel || !this.scroller) return;
    const r = this.sentinel.getBoundingClientRect();
    const box = this.scroller.getBoundingClientRect();
    if (r.top <= box.bottom + 120) this.client?.loadMore();
  }

  render() {
    const s = this.state;
    if (!s || !this.list || !this.panel) return;
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    const active = /** @type {HTMLElement|null} */ (root.activeElement);
    const focusKey = active?.dataset?.key;
    const focusRole = active?.dataset?.role;
    const wasInside = !!active && this.panel.contains(active);

    this.fillSelect(/** @type {HTMLSelectElement} */ (this.typeSel), "type", this.t("bell.allTypes"),
      unique(s.notifications.map((n) => n.type).filter(Boolean)).sort());
    this.fillSelect(/** @type {HTMLSelectElement} */ (this.sourceSel), "source", this.t("bell.allSources"),
      unique(s.notifications.map((n) => n.source ?? "").filter(Boolean)).sort());
    if (this.markAll) this.markAll.disabled = s.unreadCount === 0;
    this.renderPermission(s);
    if (this.error) {
      const e = s.error;
      this.error.textContent = e && Date.now() - e.at < 20000 ? e.message : "";
    }

    const f = this.filters;
    if (f.snoozed) {
      this.renderSnoozed(focusKey, focusRole);
      return;
    }
    const shown = s.notifications.filter((n) =>
      (!f.unread || !n.read) && (!f.type || n.type === f.type) && (!f.source || n.source === f.source));
    /** @type {(N|{group: string, items: N[]})[]} */
    const entries = [];
    /** @type {Map<string, N[]>} */
    const groups = new Map();
    for (const n of shown) {
      if (n.groupKey) {
        const g = groups.get(n.groupKey);
        if (g) {
          g.push(n);
          continue;
        }
        const items = [n];
        groups.set(n.groupKey, items);
        entries.push({ group: n.groupKey, items });
      } else {
        entries.push(n);
      }
    }
    const lis = entries.map((e) => {
      if ("items" in e) return e.items.length > 1 ? this.groupRow(e.group, e.items) : this.row(e.items[0]);
      return this.row(e);
    });
    this.list.replaceChildren(...lis);
    if (this.empty) {
      this.empty.hidden = shown.length > 0 || (!s.loaded) || s.loading;
      this.empty.textContent = s.notifications.length === 0
        ? this.t("bell.empty")
        : this.t("bell.noMatch");
    }
    if (this.loadingEl) this.loadingEl.hidden = !(s.loading || !s.loaded);
    if (focusKey) {
      // The row was re-created: focus its new twin (or its item button when the twin is
      // disabled, e.g. "Mark group as read" once the group is read).
      const sel = `[data-key="${CSS.escape(focusKey)}"]`;
      const twin = /** @type {HTMLButtonElement|null} */ (
        this.list.querySelector(`${sel}${focusRole ? `[data-role="${focusRole}"]` : ""}`));
      const el = twin && !twin.disabled ? twin
        : /** @type {HTMLElement|null} */ (this.list.querySelector(`${sel}[data-role="open"]`));
      if (el) el.focus();
    }
    // An action removed or disabled the focused control (the last item dismissed, "Mark
    // all as read" disabling itself): keep focus inside the center, where Escape and the
    // Tab trap work, instead of letting it fall to <body>.
    const now = /** @type {HTMLButtonElement|null} */ (root.activeElement);
    if (this.expanded && wasInside && (!now || !this.panel.contains(now) || now.disabled)) this.focusFallback();
  }

  /**
   * The header's and filters' fixed words, again when the element's language changed
   * (a client with its own `locale` attached after the element was built).
   */
  relabel() {
    const i18n = this.i18n;
    if (this.labelled === i18n) return;
    this.labelled = i18n;
    const prefsOpen = !!this.prefsSlot && !this.prefsSlot.hidden;
    /** @type {[HTMLElement|null|undefined, string, import("../tocsin.js").CatalogueKey][]} */
    const labels = [
      [this.markAll, "text", "bell.markAll"], [this.closeBtn, "aria-label", "bell.close"],
      [this.backBtn, "aria-label", "bell.back"], [this.backBtn, "title", "bell.back"],
      [this.titleEl, "text", prefsOpen ? "bell.preferences" : "bell.title"],
      [this.prefsText, "text", "bell.preferences"], [this.prefsBtn, "title", "bell.preferences"], [this.typeSel, "aria-label", "bell.filterType"],
      [this.sourceSel, "aria-label", "bell.filterSource"], [this.list, "aria-label", "bell.list"],
      [this.loadingEl, "text", "bell.loading"], [this.filtersEl, "aria-label", "bell.filters"],
      [this.unreadText, "text", "bell.unreadOnly"], [this.snoozedText, "text", "bell.snoozedOnly"],
    ];
    for (const [el, attr, key] of labels) {
      if (!el) continue;
      if (attr === "text") el.textContent = i18n.t(key);
      else el.setAttribute(attr, i18n.t(key));
    }
    // the selects' "All …" options and the permission line are rebuilt in the new words
    this.typeKey = this.sourceKey = "\u0001";
    if (this.perm) this.perm.dataset.mode = "";
  }

  /** Show or hide the preferences section (loaded fresh each time it opens). */
  togglePrefs() {
    const slot = this.prefsSlot;
    const btn = this.prefsBtn;
    if (!slot || !btn || !this.client) return;
    const open = slot.hidden;
    slot.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
    this.panel?.classList.toggle("prefs-open", open);
    if (this.titleEl) this.titleEl.textContent = open ? this.t("bell.preferences") : this.t("bell.title");
    if (open) {
      const types = [...new Set((this.state?.notifications ?? []).map((n) => n.type).filter(Boolean))];
      slot.replaceChildren(preferencesPanel(this.client, types, this.i18n), this.pushRow ?? "");
      slot.scrollTop = 0;
      // The section loads asynchronously and the Preferences button is hidden while it
      // shows: focus the way back, the next Tab enters the section.
      this.backBtn?.focus();
    } else {
      slot.replaceChildren();
      if (this.expanded) btn.focus();
    }
  }

  /** Focus a sensible control in the open center: the first item, else a header button. */
  focusFallback() {
    const first = /** @type {HTMLElement|null} */ (this.list?.querySelector(".open"));
    (first ?? (this.markAll && !this.markAll.disabled ? this.markAll : this.closeBtn))?.focus();
  }

  /**
   * @param {HTMLSelectElement} sel @param {"type"|"source"} which
   * @param {string} allLabel @param {string[]} values
   */
  fillSelect(sel, which, allLabel, values) {
    const key = values.join("\u0000");
    const current = this.filters[which];
    sel.hidden = values.length === 0 && !current;
    if (which === "type" ? key === this.typeKey : key === this.sourceKey) return;
    if (which === "type") this.typeKey = key;
    else this.sourceKey = key;
    const opts = [h("option", { value: "", text: allLabel })];
    for (const v of values) opts.push(h("option", { value: v, text: v }));
    if (current && !values.includes(current)) opts.push(h("option", { value: current, text: current }));
    sel.replaceChildren(...opts);
    sel.value = current;
  }

  /** @param {import("../tocsin.js").ClientState} s */
  renderPermission(s) {
    const perm = this.perm;
    const client = this.client;
    if (!perm || !client) return;
    // One compact prompt for both permissions (in-tab alerts and Web Push), dismissible
    // ("Not now" is remembered in this browser); the on/off switch for Web Push lives in
    // Preferences. Two permanent bars pushed the list down on every open.
    const p = this.push;
    const offer = p.state === "unsubscribed" || p.state === "default"; // "default": never asked
    let want = "";
    if (client.permissionDenied || p.state === "denied") want = "denied";
    else if (s.permission === "default" || (s.permission === "unsupported" && offer)) want = "ask";
    else if (s.permission === "granted" && offer) want = "offer";
    if (want !== "denied" && p.error) want = "error";
    if (want && promptDismissed()) want = "";
    const key = `${want}|${p.state}|${p.busy}|${p.error}|${PHONE.matches}`;
    if (perm.dataset.mode === key) return;
    perm.dataset.mode = key;
    const notNow = h("button", { type: "button", class: "perm-dismiss", onclick: () => {
      dismissPrompt();
      perm.dataset.mode = "";
      if (this.state) this.renderPermission(this.state);
      this.focusFallback();
    } }, this.t("perm.dismiss"));
    if (want === "ask") {
      // Phones have no desktop: say "notifications" there.
      perm.replaceChildren(h("button", {
        type: "button", class: "enable", disabled: p.busy,
        // Web Push asks for the same permission: one click turns on both where it can.
        onclick: () => (offer ? this.togglePush(false) : client.requestBrowserPermission()),
      }, this.t(PHONE.matches ? "perm.enablePhone" : "perm.enable")), notNow);
    } else if (want === "offer") {
      perm.replaceChildren(h("button", {
        type: "button", class: "push-toggle", "aria-pressed": "false", disabled: p.busy,
        onclick: () => this.togglePush(false),
      }, this.t("push.toggle")), notNow);
    } else if (want === "denied") {
      perm.replaceChildren(h("p", { class: "denied", text: this.t("perm.denied") }), notNow);
    } else if (want === "error") {
      perm.replaceChildren(h("p", { class: "push-error", role: "alert", text: p.error }), notNow);
    } else {
      perm.replaceChildren();
    }
  }

  /** The options for lib/push.js: this bell's client and worker. */
  pushOptions() {
    const worker = this.getAttribute("push-worker");
    return { client: this.client ?? undefined, ...(worker ? { serviceWorker: worker } : {}) };
  }

  /**
   * Whether "Notify me when the tab is closed" can work here: the browser has Web Push,
   * the worker would be on this page's origin, and the server has a push key.
   */
  pushPossible() {
    const client = this.client;
    if (!client || !pushSupported()) return Promise.resolve(false);
    const worker = this.getAttribute("push-worker") ?? `${client.base}/static/tocsin/sw.js`;
    try {
      if (new URL(worker, location.href).origin !== location.origin) return Promise.resolve(false);
    } catch {
      return Promise.resolve(false);
    }
    // Remembered once the server said yes; asked again on the next opening otherwise.
    this.push.key ??= fetch(`${client.base}/api/push/vapid-public-key`)
      .then((r) => r.ok, () => false)
      .then((ok) => {
        if (!ok) this.push.key = null;
        return ok;
      });
    return this.push.key;
  }

  /** Re-read where Web Push stands (async) and redraw its row. */
  refreshPush() {
    const seq = ++this.push.seq;
    const opts = this.pushOptions();
    this.pushPossible()
      .then((ok) => (ok ? pushState(opts) : "unsupported"))
      .catch(() => "unsupported")
      .then((st) => {
        if (seq !== this.push.seq) return;
        this.push.state = st;
        this.renderPush();
      });
  }

  /** The "Notify me when the tab is closed" toggle (hidden where it cannot work). */
  renderPush() {
    const row = this.pushRow;
    const p = this.push;
    if (this.state) this.renderPermission(this.state);
    if (!row) return;
    // The switch, in Preferences, once this browser can be subscribed (the prompt above
    // the list offers it first); blocked or unsupported: nothing, the prompt says why.
    if (p.state !== "subscribed" && p.state !== "unsubscribed" && p.state !== "default") {
      row.replaceChildren();
      return;
    }
    const on = p.state === "subscribed";
    const btn = h("button", {
      type: "button", class: "push-toggle", "aria-pressed": String(on), disabled: p.busy,
      "aria-describedby": "tocsin-push-state",
      // Only ever from this click: subscribePush asks for permission.
      onclick: () => this.togglePush(on),
    }, this.t("push.toggle"));
    const said = p.busy ? this.t("push.working") : on ? this.t("push.on") : this.t("push.off");
    row.replaceChildren(btn, h("span", { id: "tocsin-push-state", class: "push-state", text: said }));
  }

  /** @param {boolean} on whether it is on now (the click turns it off) */
  togglePush(on) {
    const p = this.push;
    if (p.busy) return;
    p.busy = true;
    p.error = "";
    const done = on ? unsubscribePush(this.pushOptions()) : subscribePush(this.pushOptions());
    this.renderPush();
    done.then(() => {
      p.busy = false;
      this.dispatchEvent(new CustomEvent("tocsin-push", { bubbles: true, composed: true, detail: { on: !on } }));
    }, (err) => {
      p.busy = false;
      // Plain words, not the browser's ("Registration failed - permission denied"): a
      // refusal is the blocked-permission line; anything else says it did not work.
      const refused = (err instanceof Error && err.name === "NotAllowedError") ||
        (typeof Notification !== "undefined" && Notification.permission === "denied");
      p.error = refused ? "" : this.t("push.failed", { error: err instanceof Error ? err.message : String(err) });
      if (refused) p.state = "denied";
    }).finally(() => this.refreshPush());
  }

  /** @param {N} n @param {boolean} [child] */
  row(n, child = false) {
    const key = `n:${n.id}`;
    const client = this.client;
    const i18n = this.i18n;
    const nameOf = (/** @type {string} */ u) => client?.displayName(u) ?? u;
    // A group of several publishes (docs/grouping.md): the title is said of its people
    // ("Eve and Dana liked your post"), the detail line says how many updates.
    const grouped = n.group && n.group.count > 1 ? n.group.count : 0;
    const who = grouped ? groupActors(i18n, n) : "";
    const phrased = grouped ? phraseTitle(n.title, n.actor, who) : null;
    const title = phrased ?? n.title;
    const hasUrl = !!safeUrl(n.url);
    const meta = h("span", { class: "meta" },
      h("time", { datetime: new Date(n.timestamp).toISOString(), text: i18n.ago(n.timestamp) }),
      n.priority === "urgent" || n.priority === "high"
        ? h("span", { class: `tag ${n.priority}`, text: i18n.t(`priority.${n.priority}`) }) : null,
      n.source ? h("span", { class: "source", text: n.source }) : null,
      hasUrl ? h("span", { class: "link", text: i18n.t("row.opensLink") }) : null,
      n.acked ? h("span", { class: "acked", text: ackedText(i18n, n.acked, client?.user ?? "", nameOf) })
        : incidentOf(n) && holderText(i18n, n) ? h("span", { class: "holder", text: holderText(i18n, n, nameOf) })
          : null,
      grouped ? h("span", { class: "group-by",
        text: phrased || !who ? i18n.t("group.updates", { count: grouped })
          : `${who} · ${i18n.t("group.updates", { count: grouped })}` }) : null,
      n.silent ? h("span", { class: "sr-only", text: i18n.t("row.silent") }) : null);
    // An incident nobody acknowledged yet: "Acknowledge" (for everyone it notified).
    const ack = incidentOf(n) && !n.acked ? h("button", {
      type: "button", class: "ack", dataset: { key, role: "ack" },
      "aria-label": i18n.t("row.ackLabel", { title: n.title }), title: i18n.t("row.ackTitle"),
      onclick: () => client?.ack(n.id),
    }, i18n.t("row.ack")) : null;
    const open = h("button", {
      type: "button", class: "open", dataset: { key, role: "open", id: n.id },
      onclick: () => {
        client?.open(n.id);
      },
    },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "text" },
      h("span", { class: "title", text: title }),
      n.body ? h("span", { class: "body", text: n.body }) : null,
      meta,
      h("span", { class: "sr-only", text: n.read ? i18n.t("row.read") : i18n.t("row.unread") })));
    const toggle = h("button", {
      type: "button", class: "toggle", dataset: { key, role: "toggle" },
      "aria-label": n.read ? i18n.t("row.markUnreadLabel", { title: n.title }) : i18n.t("row.markReadLabel", { title: n.title }),
      title: n.read ? i18n.t("row.markUnread") : i18n.t("row.markRead"),
      onclick: () => (n.read ? client?.markUnread(n.id) : client?.markRead(n.id)),
    }, icon(n.read ? ICON_UNREAD : ICON_CHECK, 16));
    const menuOpen = this.snoozeFor === n.id;
    const snooze = n.local ? null : h("button", {
      type: "button", class: "snooze", dataset: { key, role: "snooze" },
      "aria-label": i18n.t("row.snoozeLabel", { title: n.title }), title: i18n.t("row.snooze"),
      "aria-haspopup": "menu", "aria-expanded": String(menuOpen),
      onclick: () => this.toggleSnoozeMenu(n.id),
    }, icon(ICON_SNOOZE, 16));
    const dismiss = h("button", {
      type: "button", class: "dismiss", dataset: { key, role: "dismiss" },
      "aria-label": i18n.t("row.dismissLabel", { title: n.title }), title: i18n.t("row.dismiss"),
      onclick: () => this.dismissRow(n.id),
    }, icon(ICON_CLOSE, 16));
    return h("li", {
      class: `row ${n.read ? "read" : "unread"} prio-${n.priority}${child ? " child" : ""}`,
      dataset: { id: n.id },
    }, open,
    // Acknowledge on its own line under the text (CSS order): in the icon column it
    // stretched every icon button to its width. First in the DOM, so Tab reaches it next.
    ack ? h("div", { class: "incident-line" }, ack) : null,
    h("span", { class: "actions" }, toggle, snooze, dismiss),
    menuOpen ? snoozeMenu(i18n, key, (until) => this.snoozeRow(n.id, until)) : null);
  }

  /** Open (and focus) or close a row's snooze menu. @param {string} id */
  toggleSnoozeMenu(id) {
    this.snoozeFor = this.snoozeFor === id ? null : id;
    this.render();
    const sel = `[data-key="${CSS.escape(`n:${id}`)}"]`;
    /** @type {HTMLElement|null|undefined} */ (this.list?.querySelector(
      this.snoozeFor ? `${sel}[data-role="snooze-0"]` : `${sel}[data-role="snooze"]`))?.focus();
  }

  /**
   * Snooze until `until`, say so with an Undo, keep keyboard focus in the list.
   * @param {string} id @param {number} until
   */
  snoozeRow(id, until) {
    const opens = this.openButtons();
    const i = opens.findIndex((b) => b.dataset.id === id);
    const next = opens[i + 1] ?? opens[i - 1];
    this.snoozeFor = null;
    this.client?.snooze(id, until);
    this.showUndo(id, until);
    if (next) queueMicrotask(() => {
      const el = /** @type {HTMLElement|null} */ (this.list?.querySelector(
        `[data-key="${CSS.escape(String(next.dataset.key))}"][data-role="open"]`));
      el?.focus();
    });
  }

  /** "Snoozed until Mon 08:00 · Undo" for 10 s. @param {string} id @param {number} until */
  showUndo(id, until) {
    const bar = this.undoBar;
    if (!bar) return;
    clearTimeout(this.undo.timer);
    this.undo.id = id;
    const undo = h("button", {
      type: "button", class: "undo", onclick: () => {
        clearTimeout(this.undo.timer);
        this.client?.unsnooze(id);
        bar.replaceChildren(h("span", { text: this.t("snooze.undone") }));
        this.undo.timer = setTimeout(() => { bar.hidden = true; }, 4000);
        this.focusFallback();
      },
    }, this.t("snooze.undo"));
    bar.replaceChildren(h("span", { text: this.t("snooze.done", { time: this.i18n.when(until) }) }), undo);
    bar.hidden = false;
    this.undo.timer = setTimeout(() => { bar.hidden = true; }, 10000);
  }

  /** Read the "Snoozed" list (again) and show it if that filter is on. */
  loadSnoozed() {
    const client = this.client;
    if (!client) return;
    // Only the latest read shows: reads answered out of order (the filter turned off
    // and on, a wake) must not put an older list back.
    const seq = ++this.snoozedSeq;
    /** @param {N[]} items */
    const show = (items) => {
      if (seq !== this.snoozedSeq) return;
      this.snoozedItems = items;
      if (this.filters.snoozed) this.render();
    };
    client.snoozed().then(show, () => show([]));
  }

  /**
   * The list while "Snoozed" is on: what is snoozed, each with when it comes back and
   * "Wake now".
   * @param {string|undefined} focusKey @param {string|undefined} focusRole
   */
  renderSnoozed(focusKey, focusRole) {
    if (!this.list) return;
    const items = this.snoozedItems;
    const i18n = this.i18n;
    this.list.replaceChildren(...(items ?? []).map((n) => snoozedRow(i18n, n, () => {
      this.snoozedItems = (this.snoozedItems ?? []).filter((x) => x.id !== n.id);
      this.client?.unsnooze(n.id).then(() => this.loadSnoozed());
      this.render();
      this.focusFallback();
    })));
    if (this.empty) {
      this.empty.hidden = items === null || items.length > 0;
      this.empty.textContent = this.t("bell.noSnoozed");
    }
    if (this.loadingEl) this.loadingEl.hidden = items !== null;
    if (focusKey) {
      /** @type {HTMLElement|null} */ (this.list.querySelector(
        `[data-key="${CSS.escape(focusKey)}"][data-role="${focusRole ?? "wake"}"]`))?.focus();
    }
  }

  /** @param {string} id */
  dismissRow(id) {
    // Keep keyboard users in place: focus the next row (or the previous one).
    const opens = this.openButtons();
    const i = opens.findIndex((b) => b.dataset.id === id);
    const next = opens[i + 1] ?? opens[i - 1];
    this.client?.dismiss(id);
    if (next) queueMicrotask(() => {
      const el = /** @type {HTMLElement|null} */ (this.list?.querySelector(
        `[data-key="${CSS.escape(String(next.dataset.key))}"][data-role="open"]`));
      el?.focus();
    });
  }

  /** @param {string} groupKey @param {N[]} items */
  groupRow(groupKey, items) {
    const key = `g:${groupKey}`;
    const expanded = this.openGroups.has(groupKey);
    const unread = items.filter((n) => !n.read).length;
    const newest = items[0];
    const children = h("ul", { class: "children", hidden: !expanded },
      ...items.map((n) => this.row(n, true)));
    const open = h("button", {
      type: "button", class: "open group-toggle", "aria-expanded": String(expanded),
      dataset: { key, role: "open" },
      onclick: () => {
        if (this.openGroups.has(groupKey)) this.openGroups.delete(groupKey);
        else this.openGroups.add(groupKey);
        this.render();
      },
    },
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "text" },
      h("span", { class: "title", text: groupTitle(this.i18n, items) }),
      h("span", { class: "meta" },
        h("time", { datetime: new Date(newest.timestamp).toISOString(), text: this.i18n.ago(newest.timestamp) }),
        h("span", { class: "count", text: [this.t("group.notifications", { count: items.length }),
          ...(unread ? [this.t("group.unread", { count: unread })] : [])].join(" · ") }),
        // The visible affordance: the whole header expands, this says so.
        h("span", { class: "expand", "aria-hidden": "true" },
          icon(expanded ? ICON_LESS : ICON_MORE, 14),
          expanded ? this.t("group.collapse") : this.t("group.expand")))));
    const markGroup = h("button", {
      type: "button", class: "toggle", dataset: { key, role: "toggle" },
      "aria-label": this.t("group.markRead"), title: this.t("group.markRead"), disabled: unread === 0,
      onclick: () => items.forEach((n) => !n.read && this.client?.markRead(n.id)),
    }, icon(ICON_CHECK, 16));
    return h("li", { class: `group ${unread ? "unread" : "read"}`, dataset: { group: groupKey } },
      h("div", { class: `row ${unread ? "unread" : "read"} prio-${newest.priority}` }, open,
        h("span", { class: "actions" }, markGroup)),
      children);
  }

  /** @returns {HTMLElement[]} the item buttons keyboard arrows move between */
  openButtons() {
    if (!this.list) return [];
    return /** @type {HTMLElement[]} */ ([...this.list.querySelectorAll(".open")])
      .filter((b) => !b.closest("[hidden]"));
  }

  /**
   * Keys inside a row's snooze menu: arrows move between its items, Escape closes it
   * (not the center) and returns to its button. True when the key was the menu's.
   * @param {KeyboardEvent} e @param {HTMLElement|null} active
   */
  onMenuKey(e, active) {
    const menu = active?.closest(".snooze-menu");
    if (!menu || !this.snoozeFor) return false;
    const items = /** @type {HTMLElement[]} */ ([...menu.querySelectorAll("button")]);
    const i = items.indexOf(/** @type {HTMLElement} */ (active));
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      items[(i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length]?.focus();
      return true;
    }
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      this.toggleSnoozeMenu(this.snoozeFor);
      return true;
    }
    return false;
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    const root = /** @type {ShadowRoot} */ (this.shadowRoot);
    const active = /** @type {HTMLElement|null} */ (root.activeElement);
    if (this.onMenuKey(e, active)) return;
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      this.hide();
      return;
    }
    if (e.key === "Tab") {
      const focusables = /** @type {HTMLElement[]} */ ([...(this.panel?.querySelectorAll(
        "button, select, input, [tabindex='0']") ?? [])])
        // Rendered ones only: CSS hides the list's controls while the preferences show,
        // and the Back button while they do not.
        .filter((el) => !el.closest("[hidden]") && !(/** @type {any} */ (el).disabled) &&
          el.getClientRects().length > 0);
      if (!focusables.length) return;
      const first = focusables[0];
      const last = focusables[focusables.length - 1];
      if (e.shiftKey && (active === first || !active)) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && active === last) {
        e.preventDefault();
        first.focus();
      }
      return;
    }
    const opens = this.openButtons();
    const rowKey = active?.dataset?.key;
    const i = opens.findIndex((b) => b.dataset.key === rowKey);
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (active?.tagName === "SELECT") return;
      e.preventDefault();
      const j = i === -1 ? 0 : Math.min(opens.length - 1, Math.max(0, i + (e.key === "ArrowDown" ? 1 : -1)));
      opens[j]?.focus();
      if (e.key === "ArrowDown" && j >= opens.length - 2) this.client?.loadMore();
    } else if ((e.key === "Home" || e.key === "End") && i !== -1) {
      e.preventDefault();
      (e.key === "Home" ? opens[0] : opens[opens.length - 1])?.focus();
    } else if ((e.key === "Delete" || e.key === "Backspace") && i !== -1) {
      const id = active?.dataset?.id ?? active?.closest("li")?.getAttribute("data-id");
      if (id) {
        e.preventDefault();
        this.dismissRow(id);
      }
    }
  }
}
