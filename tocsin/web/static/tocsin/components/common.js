// @ts-check
/**
 * Shared pieces of the Tocsin Web Components: DOM building without innerHTML,
 * client attachment, and the theme (CSS custom properties, light and dark).
 * @module tocsin/components/common
 */
import { localeFor } from "../lib/i18n.js";
import { connect, getDefaultClient, translator } from "../tocsin.js";

/** @type {Map<string, import("../tocsin.js").TocsinClient>} */
const byAttributes = new Map();

/**
 * The client for a `server` + `token` attribute pair (one per pair, shared by elements).
 * @param {string} server @param {string} token
 */
function clientFor(server, token) {
  const key = `${server}\n${token}`;
  let c = byAttributes.get(key);
  if (!c) {
    c = connect({ url: server, token });
    byAttributes.set(key, c);
  }
  return c;
}

/**
 * Create an element. Children that are strings become text nodes, so user data is
 * never parsed as HTML.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>|null} [attrs] `class`, `text`, `on*` handlers, aria-*, etc.
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** Inline SVG icons: constant markup only, built with the SVG namespace. */
const SVG_NS = "http://www.w3.org/2000/svg";
/** @param {string} d path data @param {number} [size] */
export function icon(d, size = 20) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}
export const ICON_BELL =
  "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z";
export const ICON_CLOSE =
  "M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 0 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z";
export const ICON_CHECK = "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z";

/**
 * Theme: every colour is a public custom property with a light default; dark
 * defaults apply with `prefers-color-scheme: dark` or `theme="dark"` on the element.
 */
export const THEME_CSS = `
:host {
  --_bg: var(--tocsin-bg, #ffffff);
  --_fg: var(--tocsin-fg, #1b1f24);
  --_muted: var(--tocsin-muted, #5b6470);
  --_border: var(--tocsin-border, #d9dde3);
  --_accent: var(--tocsin-accent, #3056d3);
  --_accent-fg: var(--tocsin-accent-fg, #ffffff);
  --_unread-bg: var(--tocsin-unread-bg, #eef3ff);
  --_hover-bg: var(--tocsin-hover-bg, #f3f5f8);
  --_badge-bg: var(--tocsin-badge-bg, #d92d20);
  --_badge-fg: var(--tocsin-badge-fg, #ffffff);
  /* Priority colours are text colours too (tags, toast labels, the countdown): each
     meets WCAG AA (4.5:1) on every surface of its scheme, the unread tint included. */
  --_urgent: var(--tocsin-urgent, #b42318);
  --_urgent-fg: var(--tocsin-urgent-fg, #ffffff);
  --_high: var(--tocsin-high, #b54708);
  --_medium: var(--tocsin-medium, #3056d3);
  --_low: var(--tocsin-low, #667085);
  --_warn-bg: var(--tocsin-warn-bg, #fff4e5);
  --_warn-fg: var(--tocsin-warn-fg, #7a4100);
  --_radius: var(--tocsin-radius, 10px);
  --_shadow: var(--tocsin-shadow, 0 10px 30px rgba(16, 24, 40, .18));
  --_font: var(--tocsin-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  --_focus: var(--tocsin-focus, #3056d3);
  font-family: var(--_font);
  color-scheme: light dark;
}
`;

/** Dark defaults, kept apart so both selectors share them. */
const DARK = `
  --_bg: var(--tocsin-bg, #1d2129);
  --_fg: var(--tocsin-fg, #e8eaee);
  --_muted: var(--tocsin-muted, #a2a9b4);
  --_border: var(--tocsin-border, #343a46);
  --_accent: var(--tocsin-accent, #7c9cff);
  --_accent-fg: var(--tocsin-accent-fg, #0d1117);
  --_unread-bg: var(--tocsin-unread-bg, #24304d);
  --_hover-bg: var(--tocsin-hover-bg, #2a303b);
  --_warn-bg: var(--tocsin-warn-bg, #3d2c12);
  --_warn-fg: var(--tocsin-warn-fg, #ffd8a8);
  --_shadow: var(--tocsin-shadow, 0 10px 30px rgba(0, 0, 0, .5));
  --_focus: var(--tocsin-focus, #9db4ff);
  --_urgent: var(--tocsin-urgent, #ff8a80);
  --_urgent-fg: var(--tocsin-urgent-fg, #1b1f24);
  --_high: var(--tocsin-high, #f79009);
`;
export const THEME = `${THEME_CSS}
:host([theme="dark"]) {${DARK}}
@media (prefers-color-scheme: dark) { :host(:not([theme="light"])) {${DARK}} }
:host([hidden]) { display: none !important; }
*, *::before, *::after { box-sizing: border-box; }
button { font: inherit; color: inherit; }
:focus-visible { outline: 2px solid var(--_focus); outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

/**
 * A base class: holds a client and re-renders on every state change. The client is, in
 * order: the one set with `el.client = client`; one made from the element's `token` (and
 * `server`, default this origin) attributes; else the first client made with `connect()`
 * (also one that another element made from its attributes).
 */
export class TocsinElement extends HTMLElement {
  constructor() {
    super();
    /** @type {import("../tocsin.js").TocsinClient|null} */
    this._client = null;
    /** @type {(() => void)|null} */
    this._unsub = null;
    this._onDefault = (/** @type {Event} */ e) => {
      if (!this._client) this.client = /** @type {CustomEvent} */ (e).detail;
    };
  }

  get client() {
    return this._client;
  }

  /**
   * This element's words: its `lang`, else the client's `locale`, else the page's
   * `lang`, else the browser's; with the app's `strings` over them (lib/i18n.js).
   * @returns {import("../tocsin.js").Translator}
   */
  get i18n() {
    return translator(localeFor(this, this._client), this._client?.strings);
  }

  /** @param {import("../tocsin.js").CatalogueKey} key @param {Record<string, string|number>} [vars] */
  t(key, vars) {
    return this.i18n.t(key, vars);
  }

  set client(c) {
    if (c === this._client) return;
    this._unsub?.();
    this._unsub = null;
    this._client = c;
    if (c && this.isConnected) this._unsub = c.subscribe((s) => this.update(s));
  }

  connectedCallback() {
    const token = this.getAttribute("token");
    if (!this._client && token) this._client = clientFor(this.getAttribute("server") ?? "", token);
    if (!this._client) {
      const d = getDefaultClient();
      if (d) this._client = d;
      else document.addEventListener("tocsin:client", this._onDefault);
    }
    this.setup();
    if (this._client && !this._unsub) this._unsub = this._client.subscribe((s) => this.update(s));
  }

  disconnectedCallback() {
    document.removeEventListener("tocsin:client", this._onDefault);
    this._unsub?.();
    this._unsub = null;
    this.teardown();
  }

  /** Build the shadow DOM once. */
  setup() {}

  /** Tear down timers and global listeners. */
  teardown() {}

  /** @param {import("../tocsin.js").ClientState} _state */
  update(_state) {}

  /**
   * A numeric attribute (ms, counts), falling back to `dflt`.
   * @param {string} name @param {number} dflt
   */
  numAttr(name, dflt) {
    const v = this.getAttribute(name);
    if (v === null || v.trim() === "") return dflt;
    const n = Number(v);
    return Number.isFinite(n) ? n : dflt;
  }
}
