// @ts-check
/**
 * The server connection: one logical SSE stream per browser, whichever tab holds it.
 *
 * Tabs of one origin elect a leader with the Web Locks API; the leader holds the
 * EventSource and shares every event with the other tabs over a BroadcastChannel. When
 * the leader goes away another tab takes the lock and resumes from the last event id it
 * saw. Every (re)connect resumes from that id; after EventSource's own first retry,
 * failures back off exponentially with jitter; `offline`/`online` are honoured; a `reset`
 * event hands its id over and asks the owner to refetch.
 * @module tocsin/lib/connection
 */
import { isNewer } from "./ids.js";

/** @typedef {import("../tocsin.js").ConnectionStatus} ConnectionStatus */
/** @typedef {import("../tocsin.js").Role} Role */

/**
 * @typedef {object} StreamOptions
 * @property {string} key what tabs share a connection for (user or topic, and origin)
 * @property {(lastEventId: string|null) => Promise<string>} url the stream URL to open
 * @property {string[]} events the SSE event names to listen to (with `reset`)
 * @property {(name: string, id: string, data: any) => void} onEvent a new event (each once)
 * @property {(lastEventId: string|null) => void} onReset the server asked for a refetch
 * @property {() => void} onChange status or role changed
 * @property {string[]} [signals] live-only SSE events sent without an `id:` (`presence`):
 *   never deduplicated by id and never moving the position
 * @property {(name: string, data: any) => void} [onSignal] one of those arrived
 * @property {() => void} [onOnline] the browser came back online
 * @property {() => Promise<boolean>} [authRefused] after the server refused the stream:
 *   was it the token? (then the next connect asks the token function for a new one)
 * @property {boolean} share share one connection across tabs
 * @property {number} backoffBase ms
 * @property {number} backoffMax ms
 */

/**
 * One logical SSE stream shared by every tab of this browser (see module docs).
 */
export class SharedStream {
  /** @param {StreamOptions} o */
  constructor(o) {
    this.o = o;
    /** @type {string|null} the position this tab holds (an opaque event id) */
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

  /**
   * Hold `id` if it is newer than the position held (a page fetched over HTTP said so).
   * @param {string|null|undefined} id
   */
  advance(id) {
    if (id != null && isNewer(id, this.lastEventId)) this.lastEventId = String(id);
  }

  /** @param {any} m */
  onMessage(m) {
    if (!m || this.stopped) return;
    if (m.t === "ev") {
      // Delivered whatever our role: late messages from a departed leader are
      // deduplicated by id, never dropped.
      this.deliver(m.name, m.id, m.data);
    } else if (m.t === "sig") {
      this.o.onSignal?.(m.name, m.data);
    } else if (m.t === "status") {
      if (this.role !== "leader") {
        this.leaderStatus = m.status;
        this.o.onChange();
      }
    } else if (m.t === "hello") {
      if (this.role === "leader") this.broadcastStatus();
    } else if (m.t === "reset") {
      if (this.role !== "leader") {
        this.lastEventId = m.lastEventId ?? null;
        this.o.onReset(this.lastEventId);
      }
    }
  }

  /** @param {string} name @param {string} id @param {any} data */
  deliver(name, id, data) {
    if (!isNewer(id, this.lastEventId)) return; // already have it
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
    const id = e.lastEventId;
    if (this.o.signals?.includes(name)) {
      // No id of its own (EventSource repeats the last one): shared as is.
      this.ch?.postMessage({ t: "sig", name, data });
      this.o.onSignal?.(name, data);
      return;
    }
    if (name === "reset") {
      // Adopt the server's position whatever its epoch (the stream may have been recreated).
      const raw = data?.lastEventId ?? e.lastEventId;
      const to = raw == null || raw === "" ? null : String(raw);
      this.lastEventId = to;
      this.ch?.postMessage({ t: "reset", lastEventId: to });
      this.o.onReset(to);
      return;
    }
    if (!isNewer(id, this.lastEventId)) return;
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
      // No token: still signed out if the last one was refused.
      this.failures++;
      this.setOwn(this.ownStatus === "unauthorized" ? "unauthorized" : "reconnecting");
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
      if (es.readyState === EventSource.CLOSED && this.o.authRefused) {
        // The server answered with an error status (EventSource gives up on those):
        // a refused token is "unauthorized", and the next connect asks for a new one.
        this.closeEs();
        const check = this.o.authRefused;
        check().then((refused) => {
          if (this.stopped || this.es) return;
          this.setOwn(refused ? "unauthorized" : "reconnecting");
          this.schedule();
        });
        return;
      }
      if (this.ownStatus !== "unauthorized") this.setOwn("reconnecting");
      // The first failure is left to EventSource's own retry (the server's `retry:`,
      // resuming with its Last-Event-ID); after that we take over with backoff.
      if (es.readyState === EventSource.CONNECTING && this.failures === 1) return;
      this.closeEs();
      this.schedule();
    };
    for (const name of [...this.o.events, ...(this.o.signals ?? [])]) {
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
