// @ts-check
/**
 * Optimistic actions and the offline queue. An action changes what the inbox shows at
 * once (an overlay on the server state), is queued and sent in order while the network
 * is there, and is undone visibly if the server refuses it. It stays in the overlay
 * until the server state agrees (or 5 s after it was confirmed).
 * @module tocsin/lib/actions
 */
import { isNewer } from "./ids.js";
import { HttpError } from "./util.js";

/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */
/** @typedef {import("../tocsin.js").ActionDetail} ActionDetail */

/**
 * @typedef {object} Op an optimistic action
 * @property {ActionDetail["kind"]} kind
 * @property {string[]} ids the notifications it is about (none for readAll)
 * @property {string|null} [upTo] readAll: the last event id the tab had seen
 * @property {string|null} [type] readAll: only this type
 * @property {string} [incident] ack: the incident acknowledged
 * @property {number} [done] when the server confirmed it (ms)
 */

/**
 * @typedef {object} ActionHost the inbox the actions apply to
 * @property {Map<string, TocsinNotification>} items the server state
 * @property {boolean} closed
 * @property {() => boolean} canSend the connection is up
 * @property {() => void} changed
 * @property {Map<string, {by: string, at: number}>} acks incidents the server says are acknowledged
 * @property {string} user
 * @property {(message: string, op: Op) => void} refused an action was undone
 * @property {() => import("../tocsin.js").Translator} i18n the words of the user's language
 */

/**
 * @typedef {object} Overlay the optimistic view of the server state
 * @property {Map<string, boolean>} read read state changed by pending actions
 * @property {Set<string>} gone dismissed by pending actions
 * @property {number} unread the unread count with the actions applied
 * @property {Map<string, {by: string, at: number, pending: true}>} acked incidents
 *   acknowledged by pending actions
 */

/** @type {Record<Op["kind"], import("../tocsin.js").CatalogueKey>} */
const UNDONE = { read: "error.read", unread: "error.unread", readAll: "error.readAll", dismiss: "error.dismiss",
  ack: "error.ack" };

/**
 * Is notification `n` covered by a readAll up to `upTo` (of `type`)?
 * @param {TocsinNotification} n @param {string|null|undefined} upTo @param {string|null|undefined} type
 */
export function coveredBy(n, upTo, type) {
  return !isNewer(n.eventId, upTo ?? null) && (!type || n.type === type);
}

export class Actions {
  /** @param {ActionHost} host */
  constructor(host) {
    this.host = host;
    /** @type {Op[]} not yet reflected by the server */
    this.ops = [];
    /** @type {{op: Op, send: () => Promise<unknown>, resolve: (accepted: boolean) => void}[]} */
    this.queue = [];
    this.flushing = false;
  }

  /** Actions not yet confirmed by the server. */
  get pending() {
    return this.queue.length;
  }

  /**
   * Apply `op` optimistically and queue `send`. Resolves once sent: true when the
   * server accepted it, false when it refused it (and the change was undone).
   * @param {Op} op
   * @param {() => Promise<unknown>} send
   * @returns {Promise<boolean>}
   */
  run(op, send) {
    this.ops.push(op);
    /** @type {Promise<boolean>} */
    const done = new Promise((resolve) => {
      this.queue.push({ op, send, resolve });
    });
    this.host.changed();
    this.flush();
    return done;
  }

  /** Send queued actions in order; stops (keeping them) while the network is away. */
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length && !this.host.closed) {
        if (navigator.onLine === false) break;
        const job = this.queue[0];
        try {
          await job.send();
          this.queue.shift();
          job.op.done = Date.now();
          setTimeout(() => this.gc(), 5000);
          job.resolve(true);
        } catch (err) {
          if (!(err instanceof HttpError)) break; // network: retry on online/reconnect
          this.queue.shift();
          this.rollback(job.op, err);
          job.resolve(false);
        }
        this.gc();
        this.host.changed();
      }
    } finally {
      this.flushing = false;
    }
    if (this.queue.length && navigator.onLine !== false && !this.host.closed && this.host.canSend()) {
      setTimeout(() => this.flush(), 1000);
    }
  }

  /** @param {Op} op @param {HttpError} err */
  rollback(op, err) {
    this.ops = this.ops.filter((o) => o !== op);
    const n = op.ids[0] ? this.host.items.get(op.ids[0]) : undefined;
    const i18n = this.host.i18n();
    const label = n ? i18n.t("error.quoted", { title: n.title }) : "";
    this.host.refused(i18n.t(UNDONE[op.kind], { label, error: err.message }), op);
  }

  /** Drop confirmed operations once the server state agrees (or after 5 s). */
  gc() {
    const now = Date.now();
    const before = this.ops.length;
    this.ops = this.ops.filter((op) => !(op.done && (now - op.done > 5000 || this.confirmed(op))));
    if (this.ops.length !== before) this.host.changed();
  }

  /** @param {Op} op */
  confirmed(op) {
    const items = this.host.items;
    if (op.kind === "read" || op.kind === "unread") {
      return op.ids.every((id) => {
        const n = items.get(id);
        return !n || n.read === (op.kind === "read");
      });
    }
    if (op.kind === "dismiss") return !op.ids.some((id) => items.has(id));
    if (op.kind === "ack") return !op.incident || this.host.acks.has(op.incident);
    for (const n of items.values()) if (!n.read && coveredBy(n, op.upTo, op.type)) return false;
    return true;
  }

  /**
   * The pending actions applied to the server state.
   * @param {number} serverUnread
   * @returns {Overlay}
   */
  overlay(serverUnread) {
    const items = this.host.items;
    /** @type {Map<string, boolean>} */
    const read = new Map();
    /** @type {Set<string>} */
    const gone = new Set();
    /** @type {Overlay["acked"]} */
    const acked = new Map();
    let unread = serverUnread;
    /** @param {TocsinNotification} n */
    const isRead = (n) => read.get(n.id) ?? n.read;
    for (const op of this.ops) {
      if (op.kind === "ack") {
        if (op.incident && !acked.has(op.incident)) {
          acked.set(op.incident, { by: this.host.user, at: op.done ?? Date.now(), pending: true });
        }
      } else if (op.kind === "read" || op.kind === "unread") {
        const r = op.kind === "read";
        for (const id of op.ids) {
          const n = items.get(id);
          if (!n || gone.has(id)) continue;
          if (isRead(n) !== r) unread += r ? -1 : 1;
          read.set(id, r);
        }
      } else if (op.kind === "dismiss") {
        for (const id of op.ids) {
          const n = items.get(id);
          if (!n || gone.has(id)) continue;
          if (!isRead(n)) unread--;
          gone.add(id);
        }
      } else {
        let newer = 0;
        for (const n of items.values()) {
          if (gone.has(n.id) || isRead(n)) continue;
          if (coveredBy(n, op.upTo, op.type)) {
            unread--;
            read.set(n.id, true);
          } else if (isNewer(n.eventId, op.upTo ?? null)) newer++;
        }
        // Without a type every notification up to `upTo` is read, loaded or not.
        if (!op.type) unread = newer;
      }
    }
    return { read, gone, unread, acked };
  }
}
