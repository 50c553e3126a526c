// @ts-check
/**
 * Tocsin browser client: a live, shared, optimistic notification store.
 *
 *   import { connect } from "/static/tocsin/tocsin.js";
 *   const client = connect({ url: "https://tocsin.example.com", token });
 *   client.subscribe((state) => render(state.notifications, state.unreadCount));
 *
 * - One server connection per browser and user: tabs elect a leader with the Web
 *   Locks API; the leader holds the EventSource and shares every event over a
 *   BroadcastChannel. When the leader tab goes away another takes over and resumes
 *   from the last event id it saw, so nothing is lost.
 * - Every (re)connect resumes from the last event id; repeated failures back off
 *   exponentially with jitter; `offline`/`online` are honoured; `reset` refetches.
 * - Actions are optimistic, queue while offline (sent in order on reconnect) and
 *   roll back visibly when the server refuses them.
 *
 * Plain ES module, no dependencies, no build step. Types: tocsin.d.ts.
 * @module tocsin
 */

/** @typedef {'urgent'|'high'|'medium'|'low'} Priority */
/** @typedef {'connected'|'reconnecting'|'disconnected'|'offline'} ConnectionStatus */
/** @typedef {'leader'|'follower'|'solo'} Role */

/**
 * @typedef {object} TocsinNotification
 * @property {string} id
 * @property {string} type
 * @property {string} title
 * @property {string} body
 * @property {Priority} priority
 * @property {number} timestamp ms epoch
 * @property {boolean} read
 * @property {number|null} [readAt]
 * @property {string|null} [groupKey]
 * @property {string|null} [url]
 * @property {string|null} [actor]
 * @property {string|null} [source]
 * @property {Record<string, unknown>|null} [data]
 * @property {number|null} [expiresAt]
 * @property {string|number} [eventId]
 * @property {boolean} [local] a client-side message (e.g. an undone action), not from the server
 */

/**
 * @typedef {object} ClientState
 * @property {TocsinNotification[]} notifications newest first, optimistic changes applied
 * @property {number} unreadCount
 * @property {TocsinNotification[]} toastQueue by priority (urgent first), then oldest first
 * @property {ConnectionStatus} connectionStatus
 * @property {Role} role
 * @property {boolean} loaded the first page of history has arrived
 * @property {boolean} loading a page of older history is being fetched
 * @property {boolean} hasMore older history exists
 * @property {number} pendingActions actions not yet confirmed by the server
 * @property {NotificationPermission|'unsupported'} permission
 * @property {{message: string, at: number}|null} error the last failure shown to the user
 * @property {string} user
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} [url] base URL of the Tocsin server; default: this page's origin
 * @property {string | (() => string | Promise<string>)} token subscriber token (or a function
 *   returning a fresh one; called on every connect)
 * @property {string} [user] the user id; default: the token's `sub` claim
 * @property {number} [pageSize] history page size (default 30)
 * @property {boolean} [shareConnection] share one connection across tabs (default true)
 * @property {boolean} [browserNotifications] OS notifications for hidden tabs (default true)
 * @property {(url: string, n: TocsinNotification) => void} [openUrl] how to open a
 *   notification's url (default: same tab)
 * @property {number} [backoffBase] ms, first manual reconnect delay (default 1000)
 * @property {number} [backoffMax] ms, cap of the reconnect delay (default 30000)
 */

export const VERSION = "0.1.0";

/** @type {Readonly<Record<Priority, number>>} */
export const PRIORITY_RANK = Object.freeze({ urgent: 0, high: 1, medium: 2, low: 3 });

const DENIED_KEY = "tocsin:notifications-denied";

/**
 * The absolute URL if `url` is http(s) (relative URLs resolve against the page), else null.
 * Use it before following any link that came from a notification.
 * @param {unknown} url
 * @returns {string|null}
 */
export function safeUrl(url) {
  if (typeof url !== "string" || !url.trim()) return null;
  try {
    const u = new URL(url, globalThis.location?.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/**
 * The `sub` claim of a JWT, without verifying it ("" when unreadable).
 * @param {string} token
 * @returns {string}
 */
export function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(part.padEnd(Math.ceil(part.length / 4) * 4, "="));
    const sub = JSON.parse(json).sub;
    return sub == null ? "" : String(sub);
  } catch {
    return "";
  }
}

/**
 * Toast order: urgent before high before medium before low, then oldest first.
 * @param {TocsinNotification} a
 * @param {TocsinNotification} b
 */
export function compareToasts(a, b) {
  return (
    (PRIORITY_RANK[a.priority] ?? 2) - (PRIORITY_RANK[b.priority] ?? 2) ||
    a.timestamp - b.timestamp ||
    num(a.eventId) - num(b.eventId)
  );
}

/**
 * "just now", "2 min ago", "3 h ago", "2 d ago", or a date.
 * @param {number} ts ms epoch
 * @param {number} [now]
 */
export function timeAgo(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 45) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 7) return `${d} d ago`;
  return new Date(ts).toLocaleDateString();
}

/** @param {unknown} v */
function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** An HTTP error answer from the server (the request reached it and was refused). */
export class HttpError extends Error {
  /** @param {number} status @param {string} message @param {string} [code] */
  constructor(status, message, code) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

/**
 * A fetch helper with the bearer token and Tocsin's error body.
 * @param {string} base
 * @param {() => Promise<string>} getToken
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function http(base, getToken, method, path, body) {
  const token = await getToken();
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    let message = res.statusText || `HTTP ${res.status}`;
    let code;
    try {
      const err = (await res.json()).error;
      if (err?.message) message = err.message;
      code = err?.code;
    } catch {
      /* not JSON */
    }
    throw new HttpError(res.status, message, code);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/**
 * One logical SSE stream shared by every tab of this browser (see module docs).
 * @internal
 */
class SharedStream {
  /**
   * @param {{
   *   key: string,
   *   url: (lastEventId: number|null) => Promise<string>,
   *   events: string[],
   *   onEvent: (name: string, id: number, data: any) => void,
   *   onReset: (lastEventId: number) => void,
   *   onChange: () => void,
   *   onOnline?: () => void,
   *   share: boolean,
   *   backoffBase: number,
   *   backoffMax: number,
   * }} o
   */
  constructor(o) {
    this.o = o;
    /** @type {number|null} */
    this.lastEventId = null;
    /** @type {Role} */
    this.role = "solo";
    /** @type {ConnectionStatus} */
    this.ownStatus = "disconnected";
    /** @type {ConnectionStatus} */
    this.leaderStatus = "disconnected";
    this.online = navigator.onLine !== false;
    /** @type {EventSource|null} */
    this.es = null;
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    this.stopped = false;
    this.ac = new AbortController();
    /** @type {(() => void)|null} */
    this.release = null;
    this.canShare =
      o.share && typeof BroadcastChannel === "function" && !!navigator.locks?.request;
    /** @type {BroadcastChannel|null} */
    this.ch = null;
    this.onOnline = () => {
      this.online = true;
      this.failures = 0;
      if (this.role !== "follower") this.connect();
      this.o.onChange();
      this.o.onOnline?.();
    };
    this.onOffline = () => {
      this.online = false;
      this.closeEs();
      clearTimeout(this.timer);
      if (this.role !== "follower") this.setOwn("offline");
      this.o.onChange();
    };
  }

  /** @returns {ConnectionStatus} */
  get status() {
    if (this.stopped) return "disconnected";
    if (!this.online) return "offline";
    return this.role === "follower" ? this.leaderStatus : this.ownStatus;
  }

  /** Start hearing events (from the leader tab) before the first fetch of state. */
  listen() {
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    if (!this.canShare) return;
    this.ch = new BroadcastChannel(`tocsin:${this.o.key}`);
    this.ch.onmessage = (e) => this.onMessage(e.data);
    this.role = "follower";
    this.ch.postMessage({ t: "hello" });
  }

  /** Become the leader now (no sharing) or as soon as the lock is free. */
  elect() {
    if (this.stopped) return;
    if (!this.canShare) {
      this.role = "solo";
      this.connect();
      this.o.onChange();
      return;
    }
    navigator.locks
      .request(`tocsin:${this.o.key}`, { signal: this.ac.signal }, () => {
        if (this.stopped) return undefined;
        this.role = "leader";
        this.ownStatus = this.online ? this.leaderStatus : "offline";
        this.broadcastStatus();
        this.connect();
        this.o.onChange();
        return new Promise((resolve) => {
          this.release = () => resolve(undefined);
        });
      })
      .catch(() => {
        /* aborted by stop() */
      });
  }

  /** @param {number} id */
  advance(id) {
    if (this.lastEventId === null || id > this.lastEventId) this.lastEventId = id;
  }

  /** @param {any} m */
  onMessage(m) {
    if (!m || this.stopped) return;
    if (m.t === "ev") {
      // Delivered whatever our role: late messages from a departed leader are
      // deduplicated by id, never dropped.
      this.deliver(m.name, m.id, m.data);
    } else if (m.t === "status") {
      if (this.role !== "leader") {
        this.leaderStatus = m.status;
        this.o.onChange();
      }
    } else if (m.t === "hello") {
      if (this.role === "leader") this.broadcastStatus();
    } else if (m.t === "reset") {
      if (this.role !== "leader") {
        this.lastEventId = m.lastEventId;
        this.o.onReset(m.lastEventId);
      }
    }
  }

  /** @param {string} name @param {number} id @param {any} data */
  deliver(name, id, data) {
    if (this.lastEventId !== null && id <= this.lastEventId) return; // already have it
    this.lastEventId = id;
    this.o.onEvent(name, id, data);
  }

  /** @param {string} name @param {MessageEvent} e */
  handle(name, e) {
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    const id = num(e.lastEventId);
    if (name === "reset") {
      const to = num(data?.lastEventId ?? e.lastEventId);
      this.lastEventId = to;
      this.ch?.postMessage({ t: "reset", lastEventId: to });
      this.o.onReset(to);
      return;
    }
    if (this.lastEventId !== null && id <= this.lastEventId) return;
    this.ch?.postMessage({ t: "ev", name, id, data });
    this.deliver(name, id, data);
  }

  async connect() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.role === "follower") return;
    this.closeEs();
    if (!this.online) {
      this.setOwn("offline");
      return;
    }
    let url;
    try {
      url = await this.o.url(this.lastEventId);
    } catch {
      this.failures++;
      this.setOwn("reconnecting");
      this.schedule();
      return;
    }
    if (this.stopped || !this.online || this.es) return;
    const es = new EventSource(url);
    this.es = es;
    es.onopen = () => {
      if (this.es !== es) return;
      this.failures = 0;
      this.setOwn("connected");
    };
    es.onerror = () => {
      if (this.es !== es) return;
      this.failures++;
      if (!this.online) return;
      this.setOwn("reconnecting");
      // The first failure is left to EventSource's own retry (the server's `retry:`,
      // resuming with its Last-Event-ID); after that we take over with backoff.
      if (es.readyState === EventSource.CONNECTING && this.failures === 1) return;
      this.closeEs();
      this.schedule();
    };
    for (const name of this.o.events) {
      es.addEventListener(name, (e) => {
        if (this.es === es) this.handle(name, /** @type {MessageEvent} */ (e));
      });
    }
  }

  /** Exponential backoff with "equal jitter": half fixed, half random. */
  schedule() {
    clearTimeout(this.timer);
    const n = Math.max(0, this.failures - 1);
    const cap = Math.min(this.o.backoffMax, this.o.backoffBase * 2 ** n);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect at once (e.g. after the server asked us to refetch or the token changed). */
  reconnectNow() {
    this.failures = 0;
    if (this.role !== "follower") this.connect();
  }

  closeEs() {
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  /** @param {ConnectionStatus} s */
  setOwn(s) {
    if (this.ownStatus === s) return;
    this.ownStatus = s;
    this.broadcastStatus();
    this.o.onChange();
  }

  broadcastStatus() {
    if (this.role === "leader") this.ch?.postMessage({ t: "status", status: this.ownStatus });
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.ac.abort();
    this.closeEs();
    clearTimeout(this.timer);
    if (this.role === "leader") {
      this.ownStatus = "disconnected";
      this.broadcastStatus();
    }
    this.release?.();
    this.ch?.close();
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    this.o.onChange();
  }
}

/**
 * @param {string} base
 * @returns {string}
 */
function originOf(base) {
  try {
    return new URL(base || "/", location.href).origin;
  } catch {
    return base;
  }
}

/** @param {any} t */
function tokenGetter(t) {
  return typeof t === "function" ? async () => String(await t()) : async () => String(t);
}

/**
 * A user's live notification inbox. Create it with {@link connect}.
 * Fires DOM events: `notification` (detail: the notification, live arrivals only),
 * `action` (detail: `{kind, ids?, type?}` when the user acts), `error` (detail:
 * `{message}` when an action was undone).
 */
export class TocsinClient extends EventTarget {
  /** @param {ConnectOptions} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.token) throw new TypeError("connect(): a token is required");
    this.base = (opts.url ?? "").replace(/\/+$/, "");
    this.getToken = tokenGetter(opts.token);
    this.user = opts.user ?? (typeof opts.token === "string" ? tokenSubject(opts.token) : "");
    this.pageSize = opts.pageSize ?? 30;
    this.browserNotifications = opts.browserNotifications !== false;
    this.openUrl =
      opts.openUrl ??
      ((/** @type {string} */ url) => {
        location.assign(url);
      });
    this.opts = opts;
    /** @type {Map<string, TocsinNotification>} server state */
    this.items = new Map();
    this.deletedIds = new Set();
    this.serverUnread = 0;
    /** @type {any[]} optimistic operations not yet reflected by the server */
    this.ops = [];
    /** @type {{op: any, send: () => Promise<unknown>}[]} */
    this.queue = [];
    this.flushing = false;
    /** @type {TocsinNotification[]} */
    this.toasts = [];
    /** @type {string|null} */
    this.nextCursor = null;
    this.hasMore = false;
    this.loaded = false;
    this.loading = false;
    /** @type {any[]|null} events that arrived while a snapshot was being fetched */
    this.buffer = null;
    /** @type {Promise<void>|null} */
    this.fetching = null;
    this.refetchAgain = false;
    /** the last refetch failed: state may be behind the server */
    this.stale = false;
    /** @type {{message: string, at: number}|null} */
    this.error = null;
    this.errorSeq = 0;
    /** @type {Map<string, Notification>} */
    this.osNotes = new Map();
    /** @type {Set<(s: ClientState) => void>} */
    this.listeners = new Set();
    this.version = 0;
    /** @type {ClientState|null} */
    this.cached = null;
    this.scheduled = false;
    this.closed = false;
    /** @type {ConnectionStatus|null} */
    this.lastStatus = null;
    /** @type {SharedStream|null} */
    this.stream = null;
    this.watchPermission();
    /** Resolves once the first page of history is in (or failed). */
    this.ready = this.start();
  }

  async start() {
    if (!this.user) {
      try {
        this.user = tokenSubject(await this.getToken());
      } catch {
        /* the stream will report it */
      }
    }
    const base = this.base;
    this.stream = new SharedStream({
      key: `n:${originOf(base)}:${this.user}`,
      url: async (last) => {
        const q = new URLSearchParams({ token: await this.getToken() });
        if (last !== null) q.set("lastEventId", String(last));
        return `${base}/api/notifications/stream?${q}`;
      },
      events: ["notification", "read", "unread", "read_all", "deleted", "reset"],
      onEvent: (name, id, data) => this.onEvent(name, id, data),
      onReset: () => {
        this.refetch();
      },
      onChange: () => this.changed(),
      onOnline: () => {
        if (!this.loaded || this.stale) this.refetch();
        this.flush();
      },
      share: this.opts.shareConnection !== false,
      backoffBase: this.opts.backoffBase ?? 1000,
      backoffMax: this.opts.backoffMax ?? 30000,
    });
    if (this.closed) return;
    this.stream.listen();
    await this.refetch();
    if (this.closed) this.stream.stop();
    else this.stream.elect();
  }

  /** @param {string} method @param {string} path @param {unknown} [body] */
  http(method, path, body) {
    return http(this.base, this.getToken, method, path, body);
  }

  /** Fetch the newest page of state over HTTP, keeping events that race with it. */
  refetch() {
    if (this.fetching) {
      this.refetchAgain = true;
      return this.fetching;
    }
    this.buffer = [];
    this.fetching = (async () => {
      try {
        const page = await this.http("GET", `/api/notifications?limit=${this.pageSize}`);
        const last = num(page.lastEventId);
        this.items = new Map(page.items.map((/** @type {TocsinNotification} */ n) => [n.id, n]));
        this.deletedIds.clear();
        this.serverUnread = num(page.unreadCount);
        this.nextCursor = page.nextCursor ?? null;
        this.hasMore = !!page.nextCursor;
        this.loaded = true;
        this.stale = false;
        const buffered = this.buffer ?? [];
        this.buffer = null;
        this.stream?.advance(last);
        for (const ev of buffered) if (ev.id > last) this.apply(ev.name, ev.id, ev.data);
        this.gcOps();
      } catch (err) {
        const buffered = this.buffer ?? [];
        this.buffer = null;
        for (const ev of buffered) this.apply(ev.name, ev.id, ev.data);
        if (err instanceof HttpError) this.fail(`Could not load notifications: ${err.message}`);
        // Try again later (a reset or the first load must not be forgotten).
        this.stale = true;
        if (!this.closed) setTimeout(() => this.stale && !this.fetching && this.refetch(), 2000 + Math.random() * 2000);
      } finally {
        this.fetching = null;
        this.changed();
      }
      if (this.refetchAgain && !this.closed) {
        this.refetchAgain = false;
        await this.refetch();
      }
    })();
    return this.fetching;
  }

  /** @param {string} name @param {number} id @param {any} data */
  onEvent(name, id, data) {
    if (this.buffer) this.buffer.push({ name, id, data });
    else this.apply(name, id, data);
  }

  /** @param {string} name @param {number} id @param {any} data */
  apply(name, id, data) {
    if (name === "notification") {
      /** @type {TocsinNotification} */
      const n = data;
      if (!n || !n.id || this.items.has(n.id)) return;
      if (n.eventId == null) n.eventId = id;
      this.items.set(n.id, n);
      if (!n.read) {
        this.serverUnread++;
        const expired = n.expiresAt != null && n.expiresAt < Date.now();
        if (!expired) {
          this.toasts.push(n);
          this.toasts.sort(compareToasts);
          this.osNotify(n);
        }
      }
      this.dispatchEvent(new CustomEvent("notification", { detail: n }));
    } else if (name === "read" || name === "unread") {
      const read = name === "read";
      for (const nid of data.ids ?? []) {
        const n = this.items.get(nid);
        if (n) this.items.set(nid, { ...n, read, readAt: read ? (n.readAt ?? Date.now()) : null });
        if (read) this.closeOs(nid);
      }
      this.serverUnread = num(data.unreadCount);
    } else if (name === "read_all") {
      const upTo = num(data.upTo);
      for (const n of this.items.values()) {
        if (!n.read && num(n.eventId) <= upTo && (!data.type || n.type === data.type)) {
          this.items.set(n.id, { ...n, read: true, readAt: Date.now() });
          this.closeOs(n.id);
        }
      }
      this.serverUnread = num(data.unreadCount);
    } else if (name === "deleted") {
      for (const nid of data.ids ?? []) {
        this.items.delete(nid);
        this.deletedIds.add(nid);
        this.closeOs(nid);
      }
      this.serverUnread = num(data.unreadCount);
    } else {
      return;
    }
    this.gcOps();
    this.changed();
  }

  // ---- derived state ------------------------------------------------------------

  /** @returns {ClientState} */
  get state() {
    if (this.cached) return this.cached;
    const readOverlay = new Map();
    const gone = new Set();
    let unread = this.serverUnread;
    /** @param {TocsinNotification} n */
    const isRead = (n) => (readOverlay.has(n.id) ? readOverlay.get(n.id) : n.read);
    for (const op of this.ops) {
      if (op.kind === "read" || op.kind === "unread") {
        const read = op.kind === "read";
        for (const id of op.ids) {
          const n = this.items.get(id);
          if (!n || gone.has(id)) continue;
          if (isRead(n) !== read) unread += read ? -1 : 1;
          readOverlay.set(id, read);
        }
      } else if (op.kind === "dismiss") {
        const n = this.items.get(op.id);
        if (n && !gone.has(op.id)) {
          if (!isRead(n)) unread--;
          gone.add(op.id);
        }
      } else if (op.kind === "readAll") {
        let newer = 0;
        for (const n of this.items.values()) {
          if (gone.has(n.id)) continue;
          const match = num(n.eventId) <= op.upTo && (!op.type || n.type === op.type);
          if (match && !isRead(n)) {
            unread--;
            readOverlay.set(n.id, true);
          } else if (!match && !isRead(n) && num(n.eventId) > op.upTo) newer++;
        }
        // Without a type every notification up to `upTo` is read, loaded or not.
        if (!op.type) unread = newer;
      }
    }
    const list = [];
    for (const n of this.items.values()) {
      if (gone.has(n.id)) continue;
      list.push(readOverlay.has(n.id) && readOverlay.get(n.id) !== n.read
        ? { ...n, read: readOverlay.get(n.id), readAt: readOverlay.get(n.id) ? Date.now() : null }
        : n);
    }
    list.sort((a, b) => b.timestamp - a.timestamp || num(b.eventId) - num(a.eventId));
    const byId = new Map(list.map((n) => [n.id, n]));
    const toastQueue = this.toasts.filter((t) => t.local || (byId.has(t.id) && !byId.get(t.id)?.read));
    const status = this.stream ? this.stream.status : (this.closed ? "disconnected" : "disconnected");
    this.cached = Object.freeze({
      notifications: list,
      unreadCount: Math.max(0, unread),
      toastQueue,
      connectionStatus: status,
      role: this.stream?.role ?? "solo",
      loaded: this.loaded,
      loading: this.loading,
      hasMore: this.hasMore,
      pendingActions: this.queue.length,
      permission: this.permission,
      error: this.error,
      user: this.user,
    });
    return this.cached;
  }

  get notifications() { return this.state.notifications; }
  get unreadCount() { return this.state.unreadCount; }
  get toastQueue() { return this.state.toastQueue; }
  get connectionStatus() { return this.state.connectionStatus; }
  get role() { return this.state.role; }
  /** This client is its own store: `client.store.subscribe(...)` works too. */
  get store() { return this; }

  /** @returns {NotificationPermission|'unsupported'} */
  get permission() {
    return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
  }

  /**
   * Call `listener(state)` now and after every change. Returns an unsubscribe function.
   * @param {(state: ClientState) => void} listener
   */
  subscribe(listener) {
    this.listeners.add(listener);
    listener(this.state);
    return () => {
      this.listeners.delete(listener);
    };
  }

  changed() {
    this.version++;
    this.cached = null;
    const status = this.stream?.status ?? null;
    if (status !== this.lastStatus) {
      const was = this.lastStatus;
      this.lastStatus = status;
      if (status === "connected" && was !== "connected") this.flush();
    }
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const s = this.state;
      for (const fn of this.listeners) {
        try {
          fn(s);
        } catch (err) {
          console.error("tocsin listener failed", err);
        }
      }
    });
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
    const upTo = this.stream?.lastEventId ?? 0;
    /** @type {Record<string, string>} */
    const body = { before: String(upTo + 1) };
    if (opts.type) body.type = opts.type;
    return this.act({ kind: "readAll", upTo, type: opts.type ?? null }, () =>
      this.http("POST", "/api/notifications/read-all", body));
  }

  /** Remove a notification from the inbox. @param {string} id */
  dismiss(id) {
    return this.act({ kind: "dismiss", id }, async () => {
      try {
        await this.http("DELETE", `/api/notifications/${encodeURIComponent(id)}`);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err; // already gone
      }
    });
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
      this.fail(`Could not load older notifications: ${err instanceof Error ? err.message : err}`);
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
  async requestBrowserPermission() {
    if (typeof Notification === "undefined") return "unsupported";
    const result = await Notification.requestPermission();
    try {
      if (result === "denied") localStorage.setItem(DENIED_KEY, String(Date.now()));
      else localStorage.removeItem(DENIED_KEY);
    } catch {
      /* storage may be unavailable */
    }
    this.changed();
    return result;
  }

  /** Whether the user denied OS notifications (remembered across visits). */
  get permissionDenied() {
    if (this.permission === "denied") return true;
    try {
      return this.permission !== "granted" && !!localStorage.getItem(DENIED_KEY);
    } catch {
      return false;
    }
  }

  /** Close the connection (and give up leadership so another tab takes over). */
  disconnect() {
    this.closed = true;
    this.stream?.stop();
    this.changed();
  }

  /**
   * @param {any} op
   * @param {() => Promise<unknown>} send
   */
  act(op, send) {
    this.ops.push(op);
    /** @type {Promise<void>} */
    const done = new Promise((resolve) => {
      op.resolve = resolve;
    });
    this.queue.push({ op, send });
    this.changed();
    this.dispatchEvent(new CustomEvent("action", {
      detail: { kind: op.kind, ids: op.ids ?? (op.id ? [op.id] : undefined), type: op.type ?? undefined },
    }));
    this.flush();
    return done;
  }

  /** Send queued actions in order; stops (keeping them) while the network is away. */
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length && !this.closed) {
        if (navigator.onLine === false) break;
        const job = this.queue[0];
        try {
          await job.send();
          this.queue.shift();
          job.op.done = Date.now();
          setTimeout(() => this.gcOps(), 5000);
          job.op.resolve();
        } catch (err) {
          if (!(err instanceof HttpError)) break; // network: retry on online/reconnect
          this.queue.shift();
          this.rollback(job.op, err);
          job.op.resolve();
        }
        this.gcOps();
        this.changed();
      }
    } finally {
      this.flushing = false;
    }
    if (this.queue.length && navigator.onLine !== false && !this.closed &&
        this.stream?.status === "connected") {
      setTimeout(() => this.flush(), 1000);
    }
  }

  /** @param {any} op @param {HttpError} err */
  rollback(op, err) {
    this.ops = this.ops.filter((o) => o !== op);
    const target = op.ids?.[0] ?? op.id;
    const n = target ? this.items.get(target) : undefined;
    const what = {
      read: "mark as read", unread: "mark as unread", readAll: "mark all as read", dismiss: "dismiss",
    }[/** @type {'read'|'unread'|'readAll'|'dismiss'} */ (op.kind)];
    const label = n ? ` “${n.title}”` : "";
    this.fail(`Could not ${what}${label} (${err.message}). The change was undone.`);
    this.dispatchEvent(new CustomEvent("error", { detail: { message: this.error?.message, op: op.kind } }));
  }

  /** @param {string} message */
  fail(message) {
    this.error = { message, at: Date.now() };
    const toast = /** @type {TocsinNotification} */ ({
      id: `tocsin-error-${++this.errorSeq}`, type: "tocsin.error", title: message, body: "",
      priority: "high", timestamp: Date.now(), read: false, local: true,
    });
    this.toasts.push(toast);
    this.toasts.sort(compareToasts);
    this.changed();
  }

  /** Drop confirmed optimistic operations once the server state agrees (or after 5 s). */
  gcOps() {
    const now = Date.now();
    const before = this.ops.length;
    this.ops = this.ops.filter((op) => !(op.done && (now - op.done > 5000 || this.confirmed(op))));
    if (this.ops.length !== before) this.changed();
    // Toasts of notifications read or removed (here or elsewhere) are done with.
    this.toasts = this.toasts.filter((t) => {
      const n = this.items.get(t.id);
      return t.local || (n !== undefined && !n.read);
    });
  }

  /** @param {any} op */
  confirmed(op) {
    if (op.kind === "read" || op.kind === "unread") {
      return op.ids.every((/** @type {string} */ id) => {
        const n = this.items.get(id);
        return !n || n.read === (op.kind === "read");
      });
    }
    if (op.kind === "dismiss") return !this.items.has(op.id);
    if (op.kind === "readAll") {
      for (const n of this.items.values()) {
        if (!n.read && num(n.eventId) <= op.upTo && (!op.type || n.type === op.type)) return false;
      }
      return true;
    }
    return true;
  }

  // ---- OS notifications -----------------------------------------------------------

  /** @param {TocsinNotification} n */
  osNotify(n) {
    if (!this.browserNotifications || typeof Notification === "undefined") return;
    if (Notification.permission !== "granted") return;
    if (document.visibilityState !== "hidden") return;
    if (n.priority !== "urgent" && n.priority !== "high") return;
    try {
      const os = new Notification(n.title, {
        body: n.body || "",
        tag: n.id, // one OS notification per id, however many tabs show it
        requireInteraction: n.priority === "urgent",
        data: { id: n.id, url: safeUrl(n.url) },
      });
      os.onclick = (e) => {
        e.preventDefault();
        try {
          window.focus();
        } catch {
          /* ignore */
        }
        this.open(n.id);
        os.close();
      };
      os.onclose = () => {
        if (this.osNotes.get(n.id) === os) this.osNotes.delete(n.id);
      };
      this.osNotes.set(n.id, os);
    } catch (err) {
      console.warn("tocsin: could not show a browser notification", err);
    }
  }

  /** @param {string} id */
  closeOs(id) {
    const os = this.osNotes.get(id);
    if (os) {
      this.osNotes.delete(id);
      os.close();
    }
  }

  watchPermission() {
    try {
      navigator.permissions?.query({ name: /** @type {PermissionName} */ ("notifications") })
        .then((st) => {
          st.onchange = () => this.changed();
        })
        .catch(() => {});
    } catch {
      /* not supported */
    }
  }
}

/**
 * A topic's activity feed (newest first), live over the same shared-connection
 * machinery. Events that arrive on a reconnect but happened while this tab was
 * offline or disconnected are flagged `replayed: true`.
 */
export class TopicFeed extends EventTarget {
  /**
   * @param {{url?: string, token: string | (() => string | Promise<string>), topic: string,
   *   limit?: number, user?: string, shareConnection?: boolean,
   *   backoffBase?: number, backoffMax?: number}} opts
   */
  constructor(opts) {
    super();
    this.base = (opts.url ?? "").replace(/\/+$/, "");
    this.topic = opts.topic;
    this.getToken = tokenGetter(opts.token);
    this.user = opts.user ?? (typeof opts.token === "string" ? tokenSubject(opts.token) : "");
    this.limit = opts.limit ?? 50;
    /** @type {any[]} */
    this.events = [];
    this.ids = new Set();
    /** @type {any[]|null} */
    this.buffer = null;
    this.loaded = false;
    /** @type {number|null} when the connection was last lost */
    this.lostAt = null;
    this.replayedCount = 0;
    /** @type {Promise<void>|null} */
    this.fetching = null;
    this.again = false;
    this.stale = false;
    /** @type {Set<(s: any) => void>} */
    this.listeners = new Set();
    this.scheduled = false;
    const path = `/api/topics/${encodeURIComponent(this.topic)}`;
    this.path = path;
    this.stream = new SharedStream({
      key: `t:${originOf(this.base)}:${this.user}:${this.topic}`,
      url: async (last) => {
        const q = new URLSearchParams({ token: await this.getToken() });
        if (last !== null) q.set("lastEventId", String(last));
        return `${this.base}${path}/stream?${q}`;
      },
      events: ["activity", "reset"],
      onEvent: (name, id, data) => {
        if (this.buffer) this.buffer.push({ id, data });
        else this.add(id, data);
      },
      onReset: () => {
        this.refetch();
      },
      onChange: () => this.statusChanged(),
      share: opts.shareConnection !== false,
      backoffBase: opts.backoffBase ?? 1000,
      backoffMax: opts.backoffMax ?? 30000,
    });
    this.lastStatus = this.stream.status;
    this.stream.listen();
    this.ready = this.refetch().then(() => this.stream.elect());
  }

  statusChanged() {
    const s = this.stream.status;
    if (s !== this.lastStatus) {
      if (s === "offline" || s === "reconnecting") this.lostAt ??= Date.now();
      if (s === "connected") {
        this.replayedCount = 0;
        // Keep lostAt a moment: the replay arrives right after the connection opens.
        setTimeout(() => {
          if (this.stream.status === "connected") this.lostAt = null;
        }, 1500);
      }
      this.lastStatus = s;
    }
    this.changed();
  }

  /** Re-read the newest page over HTTP, keeping events that race with it. */
  refetch() {
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    this.buffer = [];
    this.fetching = (async () => {
      try {
        const page = await http(this.base, this.getToken, "GET",
          `${this.path}/events?limit=${this.limit}`);
        this.events = page.items.slice();
        this.ids = new Set(this.events.map((e) => String(e.id)));
        const last = num(page.lastEventId);
        const buf = this.buffer ?? [];
        this.buffer = null;
        this.stream.advance(last);
        for (const ev of buf) if (ev.id > last) this.add(ev.id, ev.data);
        this.loaded = true;
        this.stale = false;
      } catch {
        const buf = this.buffer ?? [];
        this.buffer = null;
        for (const ev of buf) this.add(ev.id, ev.data);
        this.stale = true;
        setTimeout(() => {
          if (this.stale && !this.fetching && !this.stream.stopped) this.refetch();
        }, 2000 + Math.random() * 2000);
      } finally {
        this.fetching = null;
        this.changed();
      }
      if (this.again && !this.stream.stopped) {
        this.again = false;
        await this.refetch();
      }
    })();
    return this.fetching;
  }

  /** @param {number} id @param {any} ev */
  add(id, ev) {
    if (!ev || this.ids.has(String(ev.id ?? id))) return;
    this.ids.add(String(ev.id ?? id));
    const item = { ...ev };
    if (this.lostAt !== null && num(ev.timestamp) >= this.lostAt - 1000) {
      item.replayed = true;
      this.replayedCount++;
    }
    this.events.unshift(item);
    if (this.events.length > 500) this.events.length = 500;
    this.dispatchEvent(new CustomEvent("activity", { detail: item }));
    this.changed();
  }

  get state() {
    return {
      events: this.events,
      connectionStatus: this.stream.status,
      role: this.stream.role,
      loaded: this.loaded,
      replayedCount: this.replayedCount,
    };
  }

  /** @param {(s: any) => void} fn */
  subscribe(fn) {
    this.listeners.add(fn);
    fn(this.state);
    return () => {
      this.listeners.delete(fn);
    };
  }

  changed() {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const s = this.state;
      for (const fn of this.listeners) fn(s);
    });
  }

  /**
   * Post an event to the topic (needs a token whose topics allow it).
   * @param {{type: string, title: string, body?: string, actor?: string, data?: object}} ev
   */
  post(ev) {
    return http(this.base, this.getToken, "POST", `${this.path}/events`, ev);
  }

  disconnect() {
    this.stream.stop();
  }
}

/** @type {TocsinClient|null} */
let defaultClient = null;

/** The first client created with {@link connect}, which components use by default. */
export function getDefaultClient() {
  return defaultClient;
}

/**
 * Connect to a Tocsin server as one user. The first client becomes the default one
 * that `<tocsin-bell>`, `<tocsin-toasts>` and `<tocsin-status>` attach to.
 * @param {ConnectOptions} opts
 * @returns {TocsinClient}
 */
export function connect(opts) {
  const client = new TocsinClient(opts);
  if (!defaultClient) {
    defaultClient = client;
    document.dispatchEvent(new CustomEvent("tocsin:client", { detail: client }));
  }
  return client;
}

/**
 * Follow a topic's activity feed.
 * @param {ConstructorParameters<typeof TopicFeed>[0]} opts
 */
export function subscribeTopic(opts) {
  return new TopicFeed(opts);
}
