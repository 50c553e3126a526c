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
 *
 * Transports: a stream that does not open within `streamTimeout` (a proxy buffering the
 * response) makes the leader fall back to long-polling (`lib/poll.js`: same position,
 * same events through {@link SharedStream#take}, shared with the other tabs) and try
 * streaming again every `streamRetry`; `transport` says which is in use. A token that
 * expires (SSE `expired`, a poll's `expired: true`) reconnects at once from the last id
 * with a new token from the token function.
 *
 * Longer than most modules on purpose: leader election, SSE, the polling fallback,
 * backoff and the watchdog are one state machine over shared state (`SharedStream`).
 * @module tocsin/lib/connection
 */
import { isNewer } from "./ids.js";
import { HttpError } from "./util.js";

/** @typedef {import("../tocsin.js").ConnectionStatus} ConnectionStatus */
/** @typedef {import("../tocsin.js").Role} Role */
/** @typedef {import("../tocsin.js").Transport} Transport */

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
 * @property {(lastEventId: string|null, signal: AbortSignal, wait?: number) =>
 *   Promise<import("./poll.js").PollReply>} [poll] one long-poll (the fallback transport);
 *   `wait` seconds (0: answer at once)
 * @property {() => void} [onRefused] a poll was refused (401/403): the token was
 *   refused, the next connect asks the token function for a new one
 * @property {() => void} [onExpired] the token expired (SSE `expired`, a poll's
 *   `expired`): the next connect asks the token function for a new one
 * @property {number} [streamTimeout] ms a stream may take to open before the client
 *   falls back to long-polling (default 4000)
 * @property {number} [streamRetry] ms of polling before streaming is tried again
 *   (default 60000)
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
    /** @type {Transport} what the leader uses: SSE, or long-polling as the fallback */
    this.ownTransport = "stream";
    /** @type {Transport} */
    this.leaderTransport = "stream";
    /** @type {AbortController|null} the running poll loop */
    this.pollAc = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} a stream that has not opened yet */
    this.watchdog = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} next try of streaming while polling */
    this.probeTimer = undefined;
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
      this.stopPoll();
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

  /** @returns {Transport} how the events arrive: `stream` (SSE) or `poll` (the fallback) */
  get transport() {
    return this.role === "follower" ? this.leaderTransport : this.ownTransport;
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
        this.leaderTransport = m.transport === "poll" ? "poll" : "stream";
        this.o.onChange();
      }
    } else if (m.t === "retry") {
      if (this.role === "leader") this.retryNow();
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
    this.take(name, e.lastEventId, data, e.lastEventId);
  }

  /**
   * One event from either transport, shared with the other tabs.
   * @param {string} name @param {string} id @param {any} data
   * @param {string} [sseId] EventSource's last id (repeated on id-less events)
   */
  take(name, id, data, sseId) {
    if (this.o.signals?.includes(name)) {
      // No id of its own (EventSource repeats the last one): shared as is.
      this.ch?.postMessage({ t: "sig", name, data });
      this.o.onSignal?.(name, data);
      return;
    }
    if (name === "reset") {
      // Adopt the server's position whatever its epoch (the stream may have been recreated).
      const raw = data?.lastEventId ?? sseId ?? id;
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

  /**
   * (Re)connect with the transport in use; `probe`: while polling, try streaming again
   * (the polls go on until the stream opens).
   * @param {boolean} [probe]
   */
  async connect(probe = false) {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.role === "follower") return;
    this.closeEs();
    if (!probe) this.stopPoll();
    if (!this.online) {
      this.setOwn("offline");
      return;
    }
    if (this.ownTransport === "poll" && !probe) {
      this.startPoll();
      return;
    }
    let url;
    try {
      url = await this.o.url(this.lastEventId);
    } catch {
      if (probe) {
        this.armProbe();
        return;
      }
      // No token: still signed out if the last one was refused.
      this.failures++;
      this.setOwn(this.ownStatus === "unauthorized" ? "unauthorized" : "reconnecting");
      this.schedule();
      return;
    }
    if (this.stopped || !this.online || this.es) return;
    const es = new EventSource(url);
    this.es = es;
    this.armWatchdog(es);
    es.onopen = () => {
      if (this.es !== es) return;
      clearTimeout(this.watchdog);
      this.failures = 0;
      if (this.ownTransport === "poll") {
        // Streaming works again: the stream takes over from the polls.
        clearTimeout(this.probeTimer);
        this.probeTimer = undefined;
        this.stopPoll();
        this.ownTransport = "stream";
        this.broadcastStatus();
        this.o.onChange();
      }
      this.setOwn("connected");
    };
    es.onerror = () => {
      if (this.es !== es) return;
      if (this.ownTransport === "poll") {
        // A try of streaming failed: keep polling, try again later.
        this.closeEs();
        this.armProbe();
        return;
      }
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
      if (es.readyState === EventSource.CONNECTING && this.failures === 1) {
        this.armWatchdog(es);
        return;
      }
      this.closeEs();
      this.schedule();
    };
    for (const name of [...this.o.events, ...(this.o.signals ?? [])]) {
      es.addEventListener(name, (e) => {
        if (this.es === es) this.handle(name, /** @type {MessageEvent} */ (e));
      });
    }
    es.addEventListener("expired", () => {
      // The token expired and the server ends the stream: resume from the last id
      // at once with a new token (EventSource's own retry would resend the old one).
      if (this.es !== es) return;
      this.closeEs();
      this.expired();
    });
  }

  /** The token expired: reconnect now, asking the token function for a new one. */
  expired() {
    this.o.onExpired?.();
    this.failures = 0;
    this.connect();
  }

  /**
   * A stream that does not open within `streamTimeout` (a buffering proxy holds the
   * response back): fall back to long-polling, or, if this was a try while polling,
   * keep polling.
   * @param {EventSource} es
   */
  armWatchdog(es) {
    clearTimeout(this.watchdog);
    if (!this.o.poll) return;
    this.watchdog = setTimeout(() => {
      if (this.es !== es || es.readyState === EventSource.OPEN) return;
      this.closeEs();
      if (this.ownTransport === "poll") {
        this.armProbe();
        return;
      }
      this.ownTransport = "poll";
      this.failures = 0;
      this.broadcastStatus();
      this.o.onChange();
      this.startPoll();
      this.armProbe();
    }, this.o.streamTimeout ?? 4000);
  }

  /** While polling: try streaming again after `streamRetry`. */
  armProbe() {
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.stopped || this.role === "follower" || this.ownTransport !== "poll") return;
      if (!this.online || this.es) return;
      this.connect(true);
    }, this.o.streamRetry ?? 60000);
  }

  startPoll() {
    this.stopPoll();
    if (this.probeTimer === undefined && !this.es) this.armProbe();
    const ac = new AbortController();
    this.pollAc = ac;
    this.pollLoop(ac);
  }

  stopPoll() {
    this.pollAc?.abort();
    this.pollAc = null;
  }

  /**
   * Poll until aborted: each reply's events go through {@link take} like the stream's;
   * an error backs off like a failed stream (and ends the loop: {@link connect} starts
   * the next one).
   * @param {AbortController} ac
   */
  async pollLoop(ac) {
    const poll = this.o.poll;
    if (!poll) return;
    // The first poll answers at once (the held ones answer only when something happens):
    // the status says "connected" as soon as the server is known to answer.
    /** @type {number|undefined} */
    let wait = 0;
    while (!ac.signal.aborted && this.pollAc === ac) {
      let reply;
      try {
        reply = await poll(this.lastEventId, ac.signal, wait);
        wait = undefined;
      } catch (err) {
        if (ac.signal.aborted || this.pollAc !== ac) return;
        this.pollAc = null;
        this.failures++;
        if (err instanceof HttpError && (err.status === 401 || err.status === 403)) {
          this.o.onRefused?.();
          this.setOwn("unauthorized");
        } else if (this.ownStatus !== "unauthorized") {
          this.setOwn("reconnecting");
        }
        this.schedule();
        return;
      }
      if (ac.signal.aborted || this.pollAc !== ac) return;
      this.failures = 0;
      this.setOwn("connected");
      for (const ev of reply.events) {
        if (this.pollAc !== ac) return; // a handler stopped the loop
        this.take(ev.event, ev.id, ev.data);
      }
      if (!reply.events.some((ev) => ev.event === "reset")) this.advance(reply.lastEventId);
      if (reply.expired) this.o.onExpired?.();
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

  /**
   * "Retry now" while reconnecting: try at once instead of waiting out the backoff (a
   * follower asks the leader tab, which holds the connection).
   */
  retryNow() {
    if (this.role === "follower") {
      this.ch?.postMessage({ t: "retry" });
      return;
    }
    if (this.stopped || this.ownStatus !== "reconnecting") return;
    clearTimeout(this.timer);
    this.closeEs();
    this.failures = 0;
    this.connect();
  }

  /** Reconnect at once (e.g. after the server asked us to refetch or the token changed). */
  reconnectNow() {
    this.failures = 0;
    if (this.role !== "follower") this.connect();
  }

  closeEs() {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
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
    if (this.role === "leader") {
      this.ch?.postMessage({ t: "status", status: this.ownStatus, transport: this.ownTransport });
    }
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.ac.abort();
    this.closeEs();
    this.stopPoll();
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
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
