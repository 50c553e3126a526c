// @ts-check
/**
 * Presence in the browser: who is on a topic (`TopicPresence`, kept live by the topic
 * feed's `presence` signals over the feed's own shared connection), and this user's
 * own state reported to the server (`reportPresence`).
 *
 * Reporting opens no connection of its own: each tab works out its state (active:
 * visible and used within `idleAfter`; else idle) and tells the browser's other tabs
 * over a BroadcastChannel; the one tab holding a Web Lock sends the aggregate (active if
 * any tab is) with `PUT /api/presence` when it changes (debounced), and again every
 * `refresh` ms so a restarted server learns it.
 * @module tocsin/lib/presence
 */
import { TopicFeed } from "./topic.js";
import { http, originOf, tokenGetter, tokenSubject } from "./util.js";

/** @typedef {import("../tocsin.js").PresenceMember} PresenceMember */
/** @typedef {import("../tocsin.js").PresenceState} PresenceState */
/** @typedef {import("../tocsin.js").PresenceOptions} PresenceOptions */
/** @typedef {import("../tocsin.js").ReportOptions} ReportOptions */

const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"];

/** @type {Map<string, PresenceReporter>} */
const reporters = new Map();

/**
 * Report this browser's presence for one user (one reporter per server and user in a
 * tab; calling again returns the same one).
 * @param {ReportOptions} opts
 * @returns {PresenceReporter}
 */
export function reportPresence(opts) {
  const base = (opts.url ?? "").replace(/\/+$/, "");
  const user = opts.user ?? (typeof opts.token === "string" ? tokenSubject(opts.token) : "");
  const key = `${originOf(base)}:${user}`;
  let r = reporters.get(key);
  if (!r) {
    r = new PresenceReporter(base, key, opts);
    reporters.set(key, r);
  }
  return r;
}

export class PresenceReporter {
  /** @param {string} base @param {string} key @param {ReportOptions} opts */
  constructor(base, key, opts) {
    this.base = base;
    this.getToken = tokenGetter(opts.token);
    this.idleAfter = opts.idleAfter ?? 5 * 60 * 1000;
    this.debounce = opts.debounce ?? 1000;
    this.refresh = opts.refresh ?? 2 * 60 * 1000;
    this.tab = Math.random().toString(36).slice(2);
    this.lastInput = Date.now();
    /** @type {Map<string, PresenceState>} every tab's state, this one's included */
    this.tabs = new Map();
    /** @type {PresenceState|null} what the server was last told */
    this.sent = null;
    this.reporting = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    this.ch = typeof BroadcastChannel === "function"
      ? new BroadcastChannel(`tocsin-presence:${key}`) : null;
    if (this.ch) this.ch.onmessage = (e) => this.onMessage(e.data);
    this.onInput = () => {
      const wasIdle = Date.now() - this.lastInput >= this.idleAfter;
      this.lastInput = Date.now();
      if (wasIdle) this.check();
    };
    this.check = () => {
      const mine = this.own();
      if (this.tabs.get(this.tab) === mine) return;
      this.tabs.set(this.tab, mine);
      this.ch?.postMessage({ t: "tab", tab: this.tab, state: mine });
      this.schedule();
    };
    for (const ev of INPUT_EVENTS) addEventListener(ev, this.onInput, { passive: true });
    document.addEventListener("visibilitychange", this.check);
    addEventListener("pagehide", () => this.ch?.postMessage({ t: "bye", tab: this.tab }));
    this.ticker = setInterval(this.check, Math.min(30000, this.idleAfter / 2));
    this.tabs.set(this.tab, this.own());
    this.ch?.postMessage({ t: "hello", tab: this.tab, state: this.own() });
    if (this.ch && navigator.locks?.request) {
      navigator.locks.request(`tocsin-presence:${key}`, () => {
        this.reporting = true;
        this.schedule(300); // let the other tabs answer the hello first
        return new Promise(() => {}); // held until this tab goes away
      });
    } else {
      this.reporting = true;
      this.schedule(0);
    }
  }

  /** @returns {PresenceState} this tab's own state */
  own() {
    const visible = document.visibilityState !== "hidden";
    return visible && Date.now() - this.lastInput < this.idleAfter ? "active" : "idle";
  }

  /** @returns {PresenceState} the browser's state: active if any tab is */
  get state() {
    for (const s of this.tabs.values()) if (s === "active") return "active";
    return "idle";
  }

  /** @param {any} m */
  onMessage(m) {
    if (!m || typeof m.tab !== "string") return;
    if (m.t === "bye") this.tabs.delete(m.tab);
    else if (m.t === "tab" || m.t === "hello" || m.t === "here") this.tabs.set(m.tab, m.state);
    if (m.t === "hello") this.ch?.postMessage({ t: "here", tab: this.tab, state: this.own() });
    this.schedule();
  }

  /** Send the aggregate soon, if this tab reports. @param {number} [delay] */
  schedule(delay = this.debounce) {
    if (!this.reporting) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(), delay);
  }

  async send() {
    const state = this.state;
    if (state !== this.sent) {
      try {
        await http(this.base, this.getToken, "PUT", "/api/presence", { state });
        this.sent = state;
      } catch {
        /* the next change or refresh tries again */
      }
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.sent = null;
      this.send();
    }, this.refresh);
  }
}

/**
 * Who is on a topic, live: a snapshot over HTTP (again after every reconnect), kept
 * current by the feed's `presence` signals. Fires `change` on every update.
 */
export class TopicPresence extends EventTarget {
  /** @param {PresenceOptions} opts */
  constructor(opts) {
    super();
    this.ownsFeed = !opts.feed;
    /** @type {TopicFeed} */
    this.feed = opts.feed
      ? /** @type {TopicFeed} */ (/** @type {unknown} */ (opts.feed))
      : new TopicFeed(/** @type {import("../tocsin.js").TopicOptions} */ (opts));
    /** @type {Map<string, PresenceMember>} */
    this.byUser = new Map();
    /** @type {Set<(members: PresenceMember[]) => void>} */
    this.listeners = new Set();
    this.lastStatus = "";
    this.onSignal = (/** @type {Event} */ e) => {
      const d = /** @type {CustomEvent} */ (e).detail;
      if (!d || typeof d.user !== "string") return;
      const old = this.byUser.get(d.user);
      if (old && old.since > d.since) return; // older news than the snapshot
      if (d.state === "absent") this.byUser.delete(d.user);
      else this.byUser.set(d.user, { user: d.user, state: d.state, since: d.since });
      this.changed();
    };
    this.feed.addEventListener("presence", this.onSignal);
    this.unsub = this.feed.subscribe((s) => {
      if (s.connectionStatus === "connected" && this.lastStatus !== "connected") this.refetch();
      this.lastStatus = s.connectionStatus;
    });
    if (opts.report !== false && opts.token) {
      reportPresence({ url: opts.url, token: opts.token, user: opts.user });
    }
    this.ready = this.refetch();
  }

  /** @returns {PresenceMember[]} sorted by user */
  get members() {
    return [...this.byUser.values()].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  }

  async refetch() {
    try {
      const path = `/api/topics/${encodeURIComponent(this.feed.topic)}/presence`;
      const page = await this.feed.http("GET", path);
      this.byUser = new Map(page.members.map((/** @type {PresenceMember} */ m) => [m.user, m]));
      this.changed();
    } catch {
      /* the next reconnect refetches */
    }
  }

  changed() {
    const m = this.members;
    for (const fn of this.listeners) fn(m);
    this.dispatchEvent(new CustomEvent("change", { detail: m }));
  }

  /**
   * Call `listener(members)` now and on every change; returns an unsubscribe function.
   * @param {(members: PresenceMember[]) => void} listener
   */
  subscribe(listener) {
    this.listeners.add(listener);
    listener(this.members);
    return () => {
      this.listeners.delete(listener);
    };
  }

  disconnect() {
    this.feed.removeEventListener("presence", this.onSignal);
    this.unsub();
    if (this.ownsFeed) this.feed.disconnect();
  }
}
