// @ts-check
/**
 * `<tocsin-toasts>`: a stack of toasts fed by the client's priority queue.
 *
 * Attributes (all optional):
 * - `max-visible` (default 3; at most 2 on a phone, where more would cover most of the
 *   screen): at most this many toasts show; the rest wait behind a "+N more" button,
 *   which opens the notification center of a `<tocsin-bell>` of the same client (a
 *   cancelable, composed `tocsin-more` event), or without one shows them all here.
 * - `duration-urgent` (0 = stays until dismissed), `duration-high` (10000),
 *   `duration-medium` (6000), `duration-low` (4000): auto-dismiss delays in ms.
 * - `position`: `bottom-right` (default), `bottom-left`, `top-right`, `top-left`.
 * - `theme`: "light" | "dark" (default follows the OS).
 *
 * Timers pause while the pointer is over the stack, while it has focus, and while the
 * page is hidden. While a `<tocsin-bell>` of the same client has its notification center
 * open, the stack is hidden (it would cover the center, which lists what arrives); when
 * the center closes, the toasts it showed are dropped and later ones appear. Urgent toasts are announced with role="alert", the rest with
 * role="status". Animations are off under `prefers-reduced-motion: reduce`.
 *
 * A notification of an incident (docs/escalation.md) gets an "Acknowledge" button and,
 * until acknowledged, the countdown to the next escalation step (its own 1 s timer that
 * only rewrites its own text, stopped when the toast leaves); once acknowledged (here,
 * in another tab or by another recipient) it says who acknowledged.
 * @module tocsin/components/toasts
 */
import { ackedText, countdownText, holderText, incidentOf, nextStepAt } from "../lib/incidents.js";
import { h, icon, ICON_CLOSE, THEME, TocsinElement } from "./common.js";

/** @typedef {import("../tocsin.js").TocsinNotification} N */

export const DEFAULT_DURATIONS = Object.freeze({ urgent: 0, high: 10000, medium: 6000, low: 4000 });

const STYLES = `${THEME}
:host { position: fixed; z-index: 2000; bottom: 16px; inset-inline-end: 16px; width: min(380px, calc(100vw - 32px));
  pointer-events: none; color: var(--_fg); }
.stack[hidden] { display: none; }
:host([position="bottom-left"]) { inset-inline-end: auto; inset-inline-start: 16px; }
:host([position="top-right"]) { bottom: auto; top: 16px; }
:host([position="top-left"]) { bottom: auto; top: 16px; inset-inline-end: auto; inset-inline-start: 16px; }
.stack { display: flex; flex-direction: column; gap: 8px; }
.region { display: flex; flex-direction: column; gap: 8px; }
.region:empty { display: none; }
.toast {
  pointer-events: auto; display: flex; align-items: flex-start; gap: 4px;
  background: var(--_bg); color: var(--_fg); border: 1px solid var(--_border);
  border-inline-start: 4px solid var(--_medium); border-radius: var(--_radius); box-shadow: var(--_shadow);
}
.toast.urgent { border-inline-start-color: var(--_urgent); }
.toast.high { border-inline-start-color: var(--_high); }
.toast.low { border-inline-start-color: var(--_low); }
.toast.local { border-inline-start-color: var(--_warn-fg); background: var(--_warn-bg); color: var(--_warn-fg); }
.open { flex: 1; min-width: 0; text-align: start; border: none; background: transparent;
  padding-block: 10px; padding-inline: 12px 4px; cursor: pointer; display: flex; flex-direction: column; gap: 2px; }
.local .open { cursor: default; }
.title { font-weight: 600; font-size: 14px; overflow-wrap: anywhere; }
.body { font-size: 13px; color: var(--_muted); overflow-wrap: anywhere; }
.local .body { color: inherit; }
.toast.digest { border-inline-start-color: var(--_accent); background: var(--_bg); color: var(--_fg); }
.prio { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; font-weight: 700; }
.urgent .prio { color: var(--_urgent); }
.high .prio { color: var(--_high); }
.close { border: none; background: transparent; padding: 8px; cursor: pointer; color: var(--_muted);
  border-radius: 6px; display: inline-grid; place-items: center; }
.close:hover { color: var(--_fg); }
.toast.incident { flex-wrap: wrap; }
.esc { flex-basis: 100%; display: flex; flex-wrap: wrap; align-items: center; gap: 4px 10px;
  padding: 0 12px 10px; font-size: 13px; }
.esc .countdown { color: var(--_urgent); font-variant-numeric: tabular-nums; }
.esc .acked { color: var(--_muted); font-weight: 600; }
.esc .holder { color: var(--_muted); }
.esc .ack { border: 1px solid var(--_urgent); background: var(--_urgent); color: var(--_urgent-fg); font: inherit;
  font-weight: 600; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
.esc .ack:hover { filter: brightness(1.1); }
.more { pointer-events: auto; align-self: flex-end; font: inherit; font-size: 13px; padding: 4px 10px;
  border-radius: 12px; cursor: pointer;
  background: var(--_bg); color: var(--_muted); border: 1px solid var(--_border); box-shadow: var(--_shadow); }
.more:hover { color: var(--_fg); }
.more[hidden] { display: none; }
/* Phones: toasts span the width; the close button is a 44 px touch target. */
@media (max-width: 480px) {
  :host, :host([position]) { inset-inline: 8px; width: auto; }
  :host(:not([position^="top"])) { bottom: calc(8px + env(safe-area-inset-bottom)); }
  :host([position^="top"]) { top: 8px; }
  .close { min-width: 44px; min-height: 44px; }
  .open { min-height: 44px; }
  .esc .ack { min-height: 44px; }
  .more { min-height: 44px; padding: 4px 16px; }
  /* Two lines of body at most, so two toasts leave the page usable. */
  .body { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
}
@media (prefers-reduced-motion: no-preference) {
  .toast { animation: tocsin-toast-in .18s ease-out; }
  @keyframes tocsin-toast-in { from { opacity: 0; transform: translateY(8px) scale(.98); } }
}
`;

/** Phones: the same breakpoint as the styles' phone rules. */
const PHONE = matchMedia("(max-width: 480px)");

export class TocsinToasts extends TocsinElement {
  static get observedAttributes() {
    return ["max-visible", "duration-urgent", "duration-high", "duration-medium", "duration-low"];
  }

  constructor() {
    super();
    /** @type {Map<string, HTMLElement>} */
    this.els = new Map();
    /** @type {Map<string, {remaining: number, started: number, handle: ReturnType<typeof setTimeout>|undefined}>} */
    this.timers = new Map();
    this.hovered = false;
    this.focused = false;
    /** "+N more" was pressed with no center to open: show the whole queue */
    this.showAll = false;
    /** @type {N[]} */
    this.visible = [];
    /** @type {Map<string, ReturnType<typeof setInterval>>} countdowns of incident toasts */
    this.ticks = new Map();
    /** @type {Map<string, string>} what each incident toast's line shows ("" = not acked) */
    this.escShown = new Map();
    /** @type {import("../tocsin.js").ClientState|null} */
    this.state = null;
    this.onVisibility = () => this.syncPause();
    /** ids of the toasts queued when the center opened or while it was open */
    this.seenInCenter = new Set();
    this.centerOpen = false;
    this.onCenter = (/** @type {Event} */ e) => {
      const bell = /** @type {any} */ (e.target);
      if (!bell || bell.client !== this.client || !this.client) return;
      const open = e.type === "tocsin-open";
      this.centerOpen = open;
      if (this.stack) this.stack.hidden = open;
      if (!open) {
        // The center listed them: do not pop them up again.
        const client = this.client;
        const seen = [...this.seenInCenter];
        this.seenInCenter.clear();
        for (const id of seen) client.dismissToast(id);
      }
      if (this.state) this.update(this.state);
      this.syncPause();
    };
  }

  get maxVisible() {
    const n = Math.max(1, Math.floor(this.numAttr("max-visible", 3)));
    return PHONE.matches ? Math.min(n, 2) : n;
  }

  /** "+N more": the center lists them; with no bell to open, show them all here. */
  onMore() {
    const ev = new CustomEvent("tocsin-more", { bubbles: true, composed: true, cancelable: true });
    if (this.dispatchEvent(ev)) {
      this.showAll = true;
      if (this.state) this.update(this.state);
    }
  }

  /** @param {N} n */
  duration(n) {
    if (n.local) return this.numAttr("duration-high", DEFAULT_DURATIONS.high);
    const p = /** @type {keyof typeof DEFAULT_DURATIONS} */ (n.priority in DEFAULT_DURATIONS ? n.priority : "medium");
    return this.numAttr(`duration-${p}`, DEFAULT_DURATIONS[p]);
  }

  get paused() {
    return this.hovered || this.focused || this.centerOpen || document.visibilityState === "hidden";
  }

  setup() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: "open" });
    const style = h("style");
    style.textContent = STYLES;
    this.alerts = h("div", { class: "region alerts", role: "alert", "aria-live": "assertive" });
    this.statuses = h("div", { class: "region statuses", role: "status", "aria-live": "polite" });
    this.more = h("button", { type: "button", class: "more", part: "more", hidden: true,
      onclick: () => this.onMore() });
    this.stack = h("div", {
      class: "stack", part: "stack", "aria-label": this.t("toast.region"),
      onmouseenter: () => { this.hovered = true; this.syncPause(); },
      onmouseleave: () => { this.hovered = false; this.syncPause(); },
    }, this.alerts, this.statuses, this.more);
    this.addEventListener("focusin", () => { this.focused = true; this.syncPause(); });
    this.addEventListener("focusout", (e) => {
      if (!this.contains(/** @type {Node|null} */ (e.relatedTarget)) &&
          !root.contains(/** @type {Node|null} */ (e.relatedTarget))) {
        this.focused = false;
        this.syncPause();
      }
    });
    root.append(style, this.stack);
  }

  connectedCallback() {
    super.connectedCallback();
    document.addEventListener("visibilitychange", this.onVisibility);
    document.addEventListener("tocsin-open", this.onCenter);
    document.addEventListener("tocsin-close", this.onCenter);
  }

  teardown() {
    document.removeEventListener("visibilitychange", this.onVisibility);
    document.removeEventListener("tocsin-open", this.onCenter);
    document.removeEventListener("tocsin-close", this.onCenter);
    for (const t of this.timers.values()) clearTimeout(t.handle);
    this.timers.clear();
    for (const id of [...this.ticks.keys()]) this.stopTick(id);
    this.escShown.clear(); // attached again, the incident lines are redrawn (countdowns restart)
  }

  attributeChangedCallback() {
    if (this.state) this.update(this.state);
  }

  /** @param {import("../tocsin.js").ClientState} s */
  update(s) {
    this.state = s;
    if (!this.alerts || !this.statuses || !this.more) return;
    // built before the client (and its locale, its strings) arrived: say it again
    this.stack?.setAttribute("aria-label", this.t("toast.region"));
    const queue = s.toastQueue;
    if (this.centerOpen) for (const n of queue) if (!n.local) this.seenInCenter.add(n.id);
    if (queue.length <= this.maxVisible) this.showAll = false;
    const visible = queue.slice(0, this.showAll ? queue.length : this.maxVisible);
    const ids = new Set(visible.map((n) => n.id));
    for (const [id, el] of this.els) {
      if (!ids.has(id)) {
        el.remove();
        this.els.delete(id);
        this.stopTick(id);
        this.escShown.delete(id);
      }
    }
    // Timers of toasts that left the stack (dismissed, read elsewhere, or pushed back by
    // a more urgent one) stop; a pushed-back toast keeps its remaining time.
    const queued = new Set(queue.map((n) => n.id));
    for (const [id, t] of this.timers) {
      if (!ids.has(id)) {
        this.stopTimer(id);
        if (!queued.has(id)) this.timers.delete(id);
      }
    }
    /** @type {HTMLElement[]} */
    const urgent = [];
    /** @type {HTMLElement[]} */
    const rest = [];
    for (const n of visible) {
      let el = this.els.get(n.id);
      // A publisher's `updated` (docs/grouping.md) changes a shown toast: re-create it.
      const sig = JSON.stringify([n.title, n.body, n.priority, n.url]);
      if (el && el.dataset.sig !== sig) {
        el.remove();
        el = undefined;
        this.escShown.delete(n.id);
      }
      if (!el) {
        el = this.toast(n);
        el.dataset.sig = sig;
        this.els.set(n.id, el);
      }
      if (!n.local && incidentOf(n)) this.renderEscalation(n, el);
      (n.priority === "urgent" && !n.local ? urgent : rest).push(el);
      if (!this.timers.has(n.id)) {
        const d = this.duration(n);
        if (d > 0) this.timers.set(n.id, { remaining: d, started: 0, handle: undefined });
      }
    }
    this.place(this.alerts, urgent);
    this.place(this.statuses, rest);
    this.visible = visible;
    const extra = queue.length - visible.length;
    this.more.hidden = extra <= 0;
    this.more.textContent = extra > 0 ? this.t("toast.more", { count: extra }) : "";
    if (!this.paused) for (const n of visible) this.startTimer(n.id);
  }

  /** Reorder children without re-creating them (keeps hover and focus). @param {HTMLElement} parent @param {HTMLElement[]} els */
  place(parent, els) {
    els.forEach((el, i) => {
      if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] ?? null);
    });
    while (parent.children.length > els.length) parent.lastElementChild?.remove();
  }

  /** @param {N} n */
  toast(n) {
    const client = this.client;
    // The digest's words are this element's (its lang), not the client's.
    const title = n.type === "tocsin.digest" && n.local
      ? this.t("digest.toast", { count: Number(n.data?.count) || 0 }) : n.title;
    const open = h("button", {
      type: "button", class: "open",
      onclick: () => {
        if (n.local) client?.dismissToast(n.id);
        else client?.open(n.id);
      },
    },
    !n.local && (n.priority === "urgent" || n.priority === "high")
      ? h("span", { class: "prio", text: this.t(`priority.${n.priority}`) }) : null,
    h("span", { class: "title", text: title }),
    n.body ? h("span", { class: "body", text: n.body }) : null);
    const close = h("button", {
      type: "button", class: "close", "aria-label": this.t("toast.dismissLabel", { title }),
      title: this.t("toast.dismiss"),
      onclick: () => client?.dismissToast(n.id),
    }, icon(ICON_CLOSE, 16));
    const incident = !n.local && incidentOf(n);
    return h("div", {
      class: `toast ${n.local ? (n.type === "tocsin.digest" ? "local digest" : "local") : n.priority}${incident ? " incident" : ""}`, part: "toast",
      dataset: { id: n.id, priority: n.priority },
    }, open, close, incident ? h("div", { class: "esc", part: "escalation" }) : null);
  }

  /**
   * The incident line of toast `el`: Acknowledge and the countdown, or who acknowledged.
   * Only rewritten when that changes; the countdown ticks by itself.
   * @param {N} n @param {HTMLElement} el
   */
  renderEscalation(n, el) {
    const me = this.client?.user ?? "";
    const client = this.client;
    const shown = n.acked ? ackedText(this.i18n, n.acked, me, (u) => client?.displayName(u) ?? u) : "";
    if (this.escShown.get(n.id) === shown) return;
    this.escShown.set(n.id, shown);
    const line = /** @type {HTMLElement|null} */ (el.querySelector(".esc"));
    if (!line) return;
    const hadFocus = !!this.shadowRoot?.activeElement && line.contains(this.shadowRoot.activeElement);
    this.stopTick(n.id);
    if (n.acked) {
      line.replaceChildren(h("span", { class: "acked", text: shown }));
      // Keep keyboard users in the toast, on its main button.
      if (hadFocus) /** @type {HTMLElement|null} */ (el.querySelector(".open"))?.focus();
      return;
    }
    const ack = h("button", {
      type: "button", class: "ack", "aria-label": this.t("toast.ackLabel", { title: n.title }),
      onclick: () => this.client?.ack(n.id),
    }, this.t("toast.ack"));
    const nextAt = nextStepAt(n);
    const held = holderText(this.i18n, n, (u) => client?.displayName(u) ?? u);
    const holder = held ? h("span", { class: "holder", text: held }) : null;
    if (nextAt === null) {
      line.replaceChildren(ack, ...(holder ? [holder] : []));
      return;
    }
    // A timer, not a live region: read on demand, never announced every second.
    const countdown = h("span", { class: "countdown", role: "timer", "aria-live": "off",
      text: countdownText(this.i18n, nextAt) });
    line.replaceChildren(ack, ...(holder ? [holder] : []), countdown);
    const tick = () => {
      countdown.textContent = countdownText(this.i18n, nextAt);
      if (Date.now() >= nextAt) this.stopTick(n.id);
    };
    if (Date.now() < nextAt) this.ticks.set(n.id, setInterval(tick, 1000));
  }

  /** @param {string} id */
  stopTick(id) {
    clearInterval(this.ticks.get(id));
    this.ticks.delete(id);
  }

  /** @param {string} id */
  startTimer(id) {
    const t = this.timers.get(id);
    if (!t || t.handle !== undefined) return;
    t.started = performance.now();
    t.handle = setTimeout(() => {
      this.timers.delete(id);
      this.client?.dismissToast(id);
    }, Math.max(0, t.remaining));
  }

  /** @param {string} id */
  stopTimer(id) {
    const t = this.timers.get(id);
    if (!t || t.handle === undefined) return;
    clearTimeout(t.handle);
    t.handle = undefined;
    t.remaining -= performance.now() - t.started;
  }

  syncPause() {
    if (this.paused) for (const id of this.timers.keys()) this.stopTimer(id);
    else for (const n of this.visible) this.startTimer(n.id);
  }
}
