// @ts-check
/**
 * A topic's activity feed (newest first), live over the same shared connection core as
 * the inbox (lib/live.js).
 * @module tocsin/lib/topic
 */
import { LiveStore } from "./live.js";
import { num } from "./util.js";

/** @typedef {import("../tocsin.js").TopicEvent} TopicEvent */
/** @typedef {import("../tocsin.js").TopicState} TopicState */
/** @typedef {import("../tocsin.js").TopicOptions} TopicOptions */

/** Events kept in memory (the newest). */
const KEEP = 500;

/**
 * A topic's activity feed. Events that arrive on a reconnect but happened while this tab
 * was offline or disconnected are flagged `replayed: true`. Fires `activity`
 * (detail: the event) for each new one.
 * @extends {LiveStore<TopicState>}
 */
export class TopicFeed extends LiveStore {
  /** @param {TopicOptions} opts */
  constructor(opts) {
    super(opts);
    this.topic = opts.topic;
    this.limit = opts.limit ?? 50;
    this.path = `/api/topics/${encodeURIComponent(this.topic)}`;
    /** @type {TopicEvent[]} */
    this.events = [];
    /** @type {Set<string>} */
    this.ids = new Set();
    /** @type {number|null} when the connection was last lost */
    this.lostAt = null;
    /** @type {number|null} when the connection came back (ms) */
    this.backAt = null;
    this.replayedCount = 0;
    /** @type {TopicState["connectionStatus"]} */
    this.lastStatus = "disconnected";
    /** Resolves once the newest page is in (or failed). */
    this.ready = this.start({ key: `t:${this.topic}`, path: this.path, events: ["activity"],
      signals: ["presence"] });
  }

  streamChanged() {
    const s = this.connectionStatus;
    if (s !== this.lastStatus) {
      if (s === "offline" || s === "reconnecting") {
        this.lostAt ??= Date.now();
        this.backAt = null;
      }
      if (s === "connected") {
        this.replayedCount = 0;
        this.backAt = Date.now();
        // Keep lostAt a moment: the replay arrives right after the connection opens.
        setTimeout(() => {
          if (this.connectionStatus === "connected") this.lostAt = null;
        }, 1500);
      }
      this.lastStatus = s;
    }
    this.changed();
  }

  fetchPage() {
    return this.http("GET", `${this.path}/events?limit=${this.limit}`);
  }

  /** @param {any} page */
  takePage(page) {
    this.events = page.items.slice();
    this.ids = new Set(this.events.map((e) => String(e.id)));
  }

  /** @param {string} _name @param {string} id @param {any} ev */
  apply(_name, id, ev) {
    if (!ev) return;
    const key = String(ev.id ?? id);
    if (this.ids.has(key)) return;
    this.ids.add(key);
    /** @type {TopicEvent} */
    const item = { ...ev };
    // Replayed: it happened while this tab was away (not just after it came back, such
    // as an update of its own posted on reconnect).
    const at = num(ev.timestamp);
    if (this.lostAt !== null && at >= this.lostAt - 1000 && (this.backAt === null || at < this.backAt)) {
      item.replayed = true;
      this.replayedCount++;
    }
    this.events.unshift(item);
    if (this.events.length > KEEP) this.events.length = KEEP;
    this.dispatchEvent(new CustomEvent("activity", { detail: item }));
    this.changed();
  }

  /** @returns {TopicState} */
  get state() {
    return {
      events: this.events,
      connectionStatus: this.connectionStatus,
      transport: this.transport,
      role: this.role,
      loaded: this.loaded,
      replayedCount: this.replayedCount,
    };
  }

  /**
   * Post an event to the topic (needs a token whose topics allow it).
   * @param {{type: string, title: string, body?: string, actor?: string,
   *   data?: Record<string, unknown>}} ev
   * @returns {Promise<TopicEvent>}
   */
  post(ev) {
    return this.http("POST", `${this.path}/events`, ev);
  }
}
