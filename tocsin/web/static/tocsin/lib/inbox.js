// @ts-check
/**
 * The inbox store: a user's notifications (newest first) kept live by the shared
 * connection, with optimistic actions (lib/actions.js), toasts and OS notifications
 * (lib/os-notify.js).
 *
 * Longer than most modules on purpose: it is the public `TocsinClient` (the .d.ts
 * surface, one method per action); the work behind each method lives in the modules
 * it imports.
 * @module tocsin/lib/inbox
 */
import { Actions, coveredBy } from "./actions.js";
import {
  applyAttention, ATTENTION_EVENTS, interrupts, listSnoozed, loadPreferences, replaceNotification,
  savePreferences, snooze, unsnooze,
} from "./attention.js";
import { compareIds, cursorAfter } from "./ids.js";
import { pageLocale, translator } from "./i18n.js";
import { incidentOf } from "./incidents.js";
import { LiveStore } from "./live.js";
import { OsNotifier } from "./os-notify.js";
import { compareToasts, HttpError, num, safeUrl } from "./util.js";

/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */
/** @typedef {import("../tocsin.js").ClientState} ClientState */
/** @typedef {import("../tocsin.js").ConnectOptions} ConnectOptions */
/** @typedef {import("./actions.js").Op} Op */

/**
 * A user's live notification inbox. Create it with `connect()`.
 * Fires DOM events: `notification` (detail: the notification, live arrivals only),
 * `action` (detail: `{kind, ids?, type?}` when the user acts), `error` (detail:
 * `{message}` when an action was undone).
 * @extends {LiveStore<ClientState>}
 */
export class TocsinClient extends LiveStore {
  /** @param {ConnectOptions} opts */
  constructor(opts) {
    if (!opts || !opts.token) throw new TypeError("connect(): a token is required");
    super(opts);
    this.pageSize = opts.pageSize ?? 30;
    /**
     * The user's preferences as last known (GET, a save, or the stream's `preferences`
     * event): the one copy every control of the page shows (null until loaded).
     * @type {import("../tocsin.js").Preferences|null}
     */
    this.prefs = null;
    /** @type {string|undefined} the components' language, if the app chose one */
    this.locale = opts.locale;
    /** @type {Partial<import("../tocsin.js").Catalogue>|undefined} the app's own wording */
    this.strings = opts.strings;
    /** @type {((user: string) => string|null|undefined)|undefined} */
    this.names = opts.displayName;
    /** @type {(url: string, n: TocsinNotification) => void} */
    this.openUrl = opts.openUrl ?? ((url) => location.assign(url));
    /** @type {Map<string, TocsinNotification>} server state */
    this.items = new Map();
    /** @type {Set<string>} */
    this.deletedIds = new Set();
    this.serverUnread = 0;
    /**
     * Incidents acknowledged (from the stream's `acked` events and accepted acks): kept
     * across refetches, since the history API does not say.
     * @type {Map<string, {by: string, at: number}>}
     */
    this.acks = new Map();
    /** @type {TocsinNotification[]} */
    this.toasts = [];
    /** @type {Set<Promise<boolean>>} snoozes and wakes sent and not yet answered */
    this.snoozing = new Set();
    /** @type {string|null} */
    this.nextCursor = null;
    this.hasMore = false;
    this.loading = false;
    /** @type {{message: string, at: number}|null} */
    this.error = null;
    this.errorSeq = 0;
    /** @type {ClientState|null} */
    this.cached = null;
    /** @type {ClientState["connectionStatus"]|null} */
    this.lastStatus = null;
    this.actions = new Actions(this);
    this.os = new OsNotifier({
      enabled: opts.browserNotifications !== false,
      onClick: (id) => this.open(id),
      onChange: () => this.changed(),
    });
    /** Resolves once the first page of history is in (or failed). */
    this.ready = this.start({
      key: "n",
      path: "/api/notifications",
      events: ["notification", "read", "unread", "read_all", "deleted", "acked", ...ATTENTION_EVENTS],
    });
  }

  // ---- the shared core's hooks --------------------------------------------------

  fetchPage() {
    return this.http("GET", `/api/notifications?limit=${this.pageSize}`);
  }

  /** @param {any} page */
  takePage(page) {
    this.items = new Map(page.items.map((/** @type {TocsinNotification} */ n) => [n.id, n]));
    this.deletedIds.clear();
    this.serverUnread = num(page.unreadCount);
    this.nextCursor = page.nextCursor ?? null;
    this.hasMore = !!page.nextCursor;
  }

  settled() {
    this.gc();
  }

  /** @param {unknown} err */
  fetchFailed(err) {
    if (err instanceof HttpError) this.fail(this.i18n().t("error.load", { error: err.message }));
  }

  backOnline() {
    super.backOnline();
    this.actions.flush();
  }

  /** @param {string} name @param {string} id @param {any} data */
  apply(name, id, data) {
    if (name === "notification") {
      /** @type {TocsinNotification} */
      const n = data;
      if (!n || !n.id) return;
      if (n.eventId == null) n.eventId = id;
      const old = this.items.get(n.id);
      if (old && old.eventId === n.eventId) return; // replayed
      // The same id again (a group grew, a snoozed one came back): replace the row.
      if (old) {
        replaceNotification(this, n);
        this.toasts = this.toasts.filter((t) => t.id !== n.id);
      } else {
        this.items.set(n.id, n);
        if (!n.read) this.serverUnread++;
      }
      if (!n.read) {
        const expired = n.expiresAt != null && n.expiresAt < Date.now();
        if (!expired && interrupts(n)) {
          this.toasts.push(n);
          this.toasts.sort(compareToasts);
          this.os.notify(n);
        }
      }
      this.dispatchEvent(new CustomEvent("notification", { detail: n }));
    } else if (name === "read" || name === "unread") {
      const read = name === "read";
      for (const nid of data.ids ?? []) {
        const n = this.items.get(nid);
        if (n) this.items.set(nid, { ...n, read, readAt: read ? (n.readAt ?? Date.now()) : null });
        if (read) this.os.close(nid);
      }
      this.serverUnread = num(data.unreadCount);
    } else if (name === "read_all") {
      const upTo = data.upTo == null ? null : String(data.upTo);
      for (const n of this.items.values()) {
        if (!n.read && coveredBy(n, upTo, data.type)) {
          this.items.set(n.id, { ...n, read: true, readAt: Date.now() });
          this.os.close(n.id);
        }
      }
      this.serverUnread = num(data.unreadCount);
    } else if (name === "deleted") {
      for (const nid of data.ids ?? []) {
        this.items.delete(nid);
        this.deletedIds.add(nid);
        this.os.close(nid);
      }
      this.serverUnread = num(data.unreadCount);
    } else if (applyAttention(this, name, id, data)) {
      /* updated, snoozed, digest (lib/attention.js) */
    } else if (name === "acked") {
      if (!data || typeof data.incident !== "string" || this.acks.has(data.incident)) return;
      this.acks.set(data.incident, { by: String(data.by ?? ""), at: num(data.at) });
    } else {
      return;
    }
    this.gc();
    this.changed();
  }

  // ---- derived state ------------------------------------------------------------

  /** @returns {ClientState} */
  get state() {
    if (this.cached) return this.cached;
    const { read, gone, unread, acked } = this.actions.overlay(this.serverUnread);
    /** @type {TocsinNotification[]} */
    const list = [];
    for (const item of this.items.values()) {
      if (gone.has(item.id)) continue;
      const r = read.get(item.id);
      let n = r !== undefined && r !== item.read ? { ...item, read: r, readAt: r ? Date.now() : null } : item;
      const inc = incidentOf(n);
      const ack = inc ? (this.acks.get(inc) ?? acked.get(inc)) : undefined;
      if (ack) n = { ...n, acked: ack };
      list.push(n);
    }
    list.sort((a, b) => b.timestamp - a.timestamp || compareIds(b.eventId, a.eventId));
    const byId = new Map(list.map((n) => [n.id, n]));
    const toastQueue = this.toasts.filter((t) => t.local || (byId.has(t.id) && !byId.get(t.id)?.read))
      .map((t) => (t.local ? t : byId.get(t.id) ?? t));
    this.cached = Object.freeze({
      notifications: list,
      unreadCount: Math.max(0, unread),
      toastQueue,
      connectionStatus: this.connectionStatus,
      transport: this.transport,
      role: this.role,
      loaded: this.loaded,
      loading: this.loading,
      hasMore: this.hasMore,
      pendingActions: this.actions.pending,
      permission: this.permission,
      error: this.error,
      user: this.user,
      preferences: this.prefs,
    });
    return this.cached;
  }

  get notifications() { return this.state.notifications; }
  get unreadCount() { return this.state.unreadCount; }
  get toastQueue() { return this.state.toastQueue; }
  /** This client is its own store: `client.store.subscribe(...)` works too. */
  get store() { return this; }

  /** @returns {NotificationPermission|'unsupported'} */
  get permission() {
    return this.os.permission;
  }

  /** Whether the user denied OS notifications (remembered across visits). */
  get permissionDenied() {
    return this.os.denied;
  }

  changed() {
    this.cached = null;
    const status = this.stream?.status ?? null;
    if (status !== this.lastStatus) {
      const was = this.lastStatus;
      this.lastStatus = status;
      if (status === "connected" && was !== "connected") this.actions.flush();
    }
    super.changed();
  }

  // ---- actions ------------------------------------------------------------------

  /** @param {string} id */
  markRead(id) {
    return this.act({ kind: "read", ids: [id] }, () =>
      this.http("PATCH", `/api/notifications/${encodeURIComponent(id)}`, { read: true }));
  }

  /** @param {string} id */
  markUnread(id) {
    return this.act({ kind: "unread", ids: [id] }, () =>
      this.http("PATCH", `/api/notifications/${encodeURIComponent(id)}`, { read: false }));
  }

  /**
   * Mark everything this tab has seen (optionally only of one type) read. Notifications
   * that arrive after the click stay unread.
   * @param {{type?: string}} [opts]
   */
  markAllRead(opts = {}) {
    const upTo = this.stream?.lastEventId ?? null;
    /** @type {Record<string, string>} */
    const body = { before: cursorAfter(upTo) };
    if (opts.type) body.type = opts.type;
    return this.act({ kind: "readAll", ids: [], upTo, type: opts.type ?? null }, () =>
      this.http("POST", "/api/notifications/read-all", body));
  }

  /** Remove a notification from the inbox. @param {string} id */
  dismiss(id) {
    return this.act({ kind: "dismiss", ids: [id] }, async () => {
      try {
        await this.http("DELETE", `/api/notifications/${encodeURIComponent(id)}`);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err; // already gone
      }
    });
  }

  /**
   * Acknowledge the incident notification `id` belongs to, for everyone it notified
   * (docs/escalation.md). Optimistic: it shows as acknowledged by this user at once, and
   * is undone visibly if the server refuses. Acknowledging is not reading.
   * @param {string} id
   */
  ack(id) {
    const n = this.items.get(id);
    const incident = n ? incidentOf(n) : null;
    if (!incident) return Promise.resolve(false);
    return this.act({ kind: "ack", ids: [id], incident }, async () => {
      /** @type {{incident?: string, ackedBy?: string|null, ackedAt?: number|null}} */
      const r = await this.http("POST", `/api/notifications/${encodeURIComponent(id)}/ack`);
      // The first ack wins: someone may have been quicker (their `acked` event follows).
      if (r && r.ackedBy && !this.acks.has(incident)) {
        this.acks.set(incident, { by: r.ackedBy, at: num(r.ackedAt) });
      }
    });
  }

  /**
   * Snooze a notification until `until` (ms since the epoch, docs/grouping.md).
   * @param {string} id @param {number} until @returns {Promise<boolean>}
   */
  async snooze(id, until) {
    const p = this.sending(snooze(this, id, until));
    this.changed();
    try {
      return await p;
    } catch (err) {
      this.fail(this.i18n().t("error.snooze", { error: err instanceof Error ? err.message : String(err) }));
      return false;
    } finally {
      this.changed();
    }
  }

  /**
   * Bring a snoozed notification back now (undo, "Wake now"); the row returns through
   * the stream. False (and a message) if the server refused.
   * @param {string} id @returns {Promise<boolean>}
   */
  async unsnooze(id) {
    try {
      return await this.sending(unsnooze(this, id));
    } catch (err) {
      this.fail(this.i18n().t("error.snooze", { error: err instanceof Error ? err.message : String(err) }));
      return false;
    }
  }

  /**
   * What is snoozed now (a fresh read, not part of `state`). Read once the snoozes and
   * wakes already sent are answered: the row leaves the list before the server has the
   * snooze, so a list read in between would miss it, and nothing reads it again.
   * @returns {Promise<TocsinNotification[]>}
   */
  async snoozed() {
    await Promise.allSettled([...this.snoozing]);
    return listSnoozed(this);
  }

  /**
   * Keep `p` (a snooze or a wake) in `snoozing` until it settles.
   * @param {Promise<boolean>} p @returns {Promise<boolean>}
   */
  sending(p) {
    this.snoozing.add(p);
    const done = () => this.snoozing.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * The words of this client's language (its `locale`, else the page's), with the app's
   * `strings`: what it says itself (undone actions, failed loads).
   * @param {string} [locale] another locale (a component's own `lang`)
   */
  i18n(locale) {
    return translator(locale ?? pageLocale(this.locale), this.strings);
  }

  /**
   * How the components name a user (who acknowledged, who is here): the app's
   * `displayName`, else the id.
   * @param {string} user @returns {string}
   */
  displayName(user) {
    try {
      return this.names?.(user) || user;
    } catch {
      return user;
    }
  }

  /** The user's preferences, fetched (docs/attention.md); `state.preferences` follows. */
  async preferences() {
    return this.keepPreferences(await loadPreferences(this));
  }

  /**
   * Store the user's preferences; `state.preferences` (every control showing them, in
   * this tab at once, in the others and on other devices by the stream) follows.
   * @param {import("../tocsin.js").Preferences} p
   */
  async savePreferences(p) {
    return this.keepPreferences(await savePreferences(this, p));
  }

  /** @param {import("../tocsin.js").Preferences} p */
  keepPreferences(p) {
    this.prefs = p;
    this.changed();
    return p;
  }

  /** Take a toast off the stack (the notification stays in the inbox). @param {string} id */
  dismissToast(id) {
    const before = this.toasts.length;
    this.toasts = this.toasts.filter((t) => t.id !== id);
    if (this.toasts.length !== before) this.changed();
  }

  /**
   * Open a notification: mark it read and follow its url if it is http(s).
   * @param {string} id
   */
  open(id) {
    const n = this.state.notifications.find((x) => x.id === id);
    if (!n) return;
    if (!n.read) this.markRead(id);
    this.dismissToast(id);
    const url = safeUrl(n.url);
    if (url) this.openUrl(url, n);
  }

  /** Fetch the next page of older history (for infinite scroll). */
  async loadMore() {
    if (this.loading || !this.hasMore || !this.nextCursor) return;
    this.loading = true;
    this.changed();
    try {
      const q = new URLSearchParams({ limit: String(this.pageSize), before: this.nextCursor });
      const page = await this.http("GET", `/api/notifications?${q}`);
      for (const n of page.items) {
        if (!this.items.has(n.id) && !this.deletedIds.has(n.id)) this.items.set(n.id, n);
      }
      this.nextCursor = page.nextCursor ?? null;
      this.hasMore = !!page.nextCursor;
    } catch (err) {
      this.fail(this.i18n().t("error.older", { error: err instanceof Error ? err.message : String(err) }));
    } finally {
      this.loading = false;
      this.changed();
    }
  }

  /**
   * Ask for permission to show OS notifications. Call it only from a user gesture
   * (a click): browsers ignore or penalise prompts that are not.
   * @returns {Promise<NotificationPermission|'unsupported'>}
   */
  requestBrowserPermission() {
    return this.os.request();
  }

  /**
   * @param {Op} op
   * @param {() => Promise<unknown>} send
   */
  act(op, send) {
    const done = this.actions.run(op, send);
    this.dispatchEvent(new CustomEvent("action", {
      detail: {
        kind: op.kind, ids: op.kind === "readAll" ? undefined : op.ids, type: op.type ?? undefined,
        settled: done,
      },
    }));
    return done;
  }

  // ---- the actions' host (lib/actions.js) ---------------------------------------

  canSend() {
    return this.connectionStatus === "connected";
  }

  /** @param {string} message @param {Op} op */
  refused(message, op) {
    this.fail(message);
    this.dispatchEvent(new CustomEvent("error", { detail: { message, op: op.kind } }));
  }

  /** Show a failure to the user: an error toast and a line in the center. @param {string} message */
  fail(message) {
    this.error = { message, at: Date.now() };
    /** @type {TocsinNotification} */
    const toast = {
      id: `tocsin-error-${++this.errorSeq}`, type: "tocsin.error", title: message, body: "",
      priority: "high", timestamp: Date.now(), read: false, local: true,
    };
    this.toasts.push(toast);
    this.toasts.sort(compareToasts);
    this.changed();
  }

  /** Drop confirmed actions, and toasts of notifications read or removed (here or elsewhere). */
  gc() {
    this.actions.gc();
    this.toasts = this.toasts.filter((t) => {
      const n = this.items.get(t.id);
      return t.local || (n !== undefined && !n.read);
    });
  }
}
