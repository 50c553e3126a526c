// @ts-check
/**
 * The core both the inbox and topic feeds are built on: a snapshot fetched over HTTP
 * kept current by a shared stream.
 *
 * Order of a start: listen to the stream (hearing the leader tab's events), fetch the
 * newest page, then take part in the leader election. Events that arrive while a page is
 * being fetched are buffered and applied after it if they are newer than the page's
 * `lastEventId`. A `reset` refetches; a failed fetch is retried after 2–4 s; overlapping
 * refetches coalesce into one more. Listeners are told of changes once a microtask.
 * @module tocsin/lib/live
 */
import { SharedStream } from "./connection.js";
import { isNewer } from "./ids.js";
import { pollOnce } from "./poll.js";
import { http, HttpError, originOf, tokenGetter, tokenSubject } from "./util.js";

/** @typedef {import("../tocsin.js").ConnectionStatus} ConnectionStatus */
/** @typedef {import("../tocsin.js").Role} Role */

/**
 * @typedef {object} LiveOptions
 * @property {string} [url] base URL of the Tocsin server; default: this page's origin
 * @property {import("./util.js").TokenOption} token
 * @property {string} [user] default: the token's `sub` claim
 * @property {boolean} [shareConnection] default true
 * @property {number} [backoffBase] ms, default 1000
 * @property {number} [backoffMax] ms, default 10000
 * @property {number} [streamTimeout] ms a stream may take to open before falling back to
 *   long-polling, default 4000
 * @property {number} [streamRetry] ms of long-polling before streaming is tried again,
 *   default 60000
 */

/**
 * @typedef {object} Feed what a subclass streams
 * @property {string} key names the shared connection (with the origin and user)
 * @property {string} path the API path; the stream is `${path}/stream`
 * @property {string[]} events SSE event names besides `reset`
 * @property {string[]} [signals] live-only event names (no id), dispatched as DOM events
 */

/** @typedef {{name: string, id: string, data: any}} BufferedEvent */

/**
 * @template S the state listeners receive
 * @abstract
 */
export class LiveStore extends EventTarget {
  /** @param {LiveOptions} opts */
  constructor(opts) {
    super();
    this.base = (opts.url ?? "").replace(/\/+$/, "");
    /** the server refused the token: the next call of the token function says so */
    this.tokenRefused = false;
    /** the token expired: the next connect asks the token function for a new one */
    this.tokenExpired = false;
    this.getToken = tokenGetter(opts.token, () => this.tokenRefused || this.tokenExpired);
    this.user = opts.user ?? (typeof opts.token === "string" ? tokenSubject(opts.token) : "");
    this.live = opts;
    /** @type {SharedStream|null} */
    this.stream = null;
    this.loaded = false;
    /** the last refetch failed: state may be behind the server */
    this.stale = false;
    this.closed = false;
    /** @type {BufferedEvent[]|null} events that arrived while a page was being fetched */
    this.buffer = null;
    /** @type {Promise<void>|null} */
    this.fetching = null;
    this.refetchAgain = false;
    /** @type {Set<(s: S) => void>} */
    this.listeners = new Set();
    this.scheduled = false;
  }

  /**
   * Open the shared stream and load the first page. The subclass calls it once.
   * @param {Feed} feed
   */
  async start(feed) {
    if (!this.user) {
      try {
        this.user = tokenSubject(await this.getToken());
      } catch {
        /* the stream will report it */
      }
    }
    const o = this.live;
    this.stream = new SharedStream({
      key: `${feed.key}:${originOf(this.base)}:${this.user}`,
      url: async (last) => {
        const q = new URLSearchParams({ token: await this.freshToken() });
        if (last !== null) q.set("lastEventId", last);
        if (feed.signals?.length) q.set("presence", "1");
        return `${this.base}${feed.path}/stream?${q}`;
      },
      poll: async (last, signal, wait) =>
        pollOnce(`${this.base}${feed.path}/poll`, await this.freshToken(), last, signal, wait),
      onExpired: () => {
        this.tokenExpired = true;
      },
      onRefused: () => {
        this.tokenRefused = true;
      },
      streamTimeout: o.streamTimeout,
      streamRetry: o.streamRetry,
      events: [...feed.events, "reset"],
      signals: feed.signals,
      onSignal: (name, data) => this.dispatchEvent(new CustomEvent(name, { detail: data })),
      onEvent: (name, id, data) => {
        if (this.buffer) this.buffer.push({ name, id, data });
        else this.apply(name, id, data);
      },
      onReset: () => {
        this.refetch();
      },
      onChange: () => {
        if (this.stream?.status === "connected") this.tokenRefused = false;
        this.streamChanged();
      },
      authRefused: async () => {
        // EventSource cannot tell why a stream was refused: ask the API with the same token.
        try {
          await this.http("GET", "/api/notifications/unread-count");
          return false;
        } catch (err) {
          const refused = err instanceof HttpError && (err.status === 401 || err.status === 403);
          if (refused) this.tokenRefused = true;
          return refused;
        }
      },
      onOnline: () => this.backOnline(),
      share: o.shareConnection !== false,
      backoffBase: o.backoffBase ?? 1000,
      // 10 s, not 30: after a server restart a tab waited up to 30 s (about 20 s seen)
      // although the server was back; jitter still spreads a reconnecting crowd.
      backoffMax: o.backoffMax ?? 10000,
    });
    if (this.closed) return;
    this.stream.listen();
    await this.refetch();
    if (this.closed) this.stream.stop();
    else this.stream.elect();
  }

  /** @returns {ConnectionStatus} */
  get connectionStatus() {
    return this.stream?.status ?? "disconnected";
  }

  /** @returns {import("../tocsin.js").Transport} `poll` while long-polling (the fallback) */
  get transport() {
    return this.stream?.transport ?? "stream";
  }

  /** A token for a (re)connect: a new one after the last expired. */
  async freshToken() {
    const token = await this.getToken();
    this.tokenExpired = false;
    return token;
  }

  /** @returns {Role} */
  get role() {
    return this.stream?.role ?? "solo";
  }

  /**
   * The state listeners receive.
   * @abstract
   * @returns {S}
   */
  get state() {
    throw new Error("abstract");
  }

  /**
   * Fetch the newest page over HTTP.
   * @abstract
   * @returns {Promise<{lastEventId?: string|null}>}
   */
  async fetchPage() {
    throw new Error("abstract");
  }

  /**
   * Replace the state with a fetched page (events buffered meanwhile follow).
   * @abstract
   * @param {any} _page
   */
  takePage(_page) {}

  /**
   * Apply one stream event.
   * @abstract
   * @param {string} _name @param {string} _id @param {any} _data
   */
  apply(_name, _id, _data) {}

  /** After a page and the events buffered during its fetch were applied. */
  settled() {}

  /** @param {unknown} _err a refetch failed (it will be retried) */
  fetchFailed(_err) {}

  /** The stream's status or role changed. */
  streamChanged() {
    this.changed();
  }

  /** Try to reconnect at once instead of after the backoff ("Retry now"). */
  retry() {
    this.stream?.retryNow();
  }

  /** The browser is back online (the stream reconnects by itself). */
  backOnline() {
    if (!this.loaded || this.stale) this.refetch();
  }

  /**
   * Re-read the newest page over HTTP, keeping events that race with it.
   * @returns {Promise<void>}
   */
  refetch() {
    if (this.fetching) {
      this.refetchAgain = true;
      return this.fetching;
    }
    this.buffer = [];
    this.fetching = (async () => {
      try {
        const page = await this.fetchPage();
        const last = page.lastEventId ?? null;
        const buffered = this.buffer ?? [];
        this.buffer = null;
        this.takePage(page);
        this.loaded = true;
        this.stale = false;
        this.stream?.advance(last);
        for (const ev of buffered) if (isNewer(ev.id, last)) this.apply(ev.name, ev.id, ev.data);
        this.settled();
      } catch (err) {
        const buffered = this.buffer ?? [];
        this.buffer = null;
        for (const ev of buffered) this.apply(ev.name, ev.id, ev.data);
        this.fetchFailed(err);
        // Try again later (a reset or the first load must not be forgotten).
        this.stale = true;
        if (!this.closed) {
          setTimeout(() => {
            if (this.stale && !this.fetching && !this.closed) this.refetch();
          }, 2000 + Math.random() * 2000);
        }
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

  /**
   * An authenticated request to the server.
   * @param {string} method @param {string} path @param {unknown} [body]
   */
  http(method, path, body) {
    return http(this.base, this.getToken, method, path, body);
  }

  /**
   * Call `listener(state)` now and after every change. Returns an unsubscribe function.
   * @param {(state: S) => void} listener
   * @returns {() => void}
   */
  subscribe(listener) {
    this.listeners.add(listener);
    listener(this.state);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Something changed: tell the listeners (once per microtask). */
  changed() {
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

  /** Close the connection (and give up leadership so another tab takes over). */
  disconnect() {
    this.closed = true;
    this.stream?.stop();
    this.changed();
  }
}
