// @ts-check
/**
 * Web Push: reach the user while no tab of the app is open. `subscribePush()` asks for
 * permission (call it only from a click), registers Tocsin's service worker (sw.js),
 * subscribes with the server's VAPID key and hands the subscription to the server;
 * `unsubscribePush()` undoes it; `pushState()` says where things stand.
 * @module tocsin/lib/push
 */
import { http, HttpError, httpError, originOf, tokenGetter } from "./util.js";

/** @typedef {import("../tocsin.js").PushOptions} PushOptions */
/** @typedef {import("../tocsin.js").PushState} PushState */
/** @typedef {import("../tocsin.js").PushSubscriptionInfo} PushSubscriptionInfo */
/** @typedef {import("../tocsin.js").TocsinClient} TocsinClient */

const STORE_KEY = "tocsin:push";
const SW_PATH = "/static/tocsin/sw.js";

/**
 * The server, credentials and worker `opts` describe (a client's, else its own `url`
 * and `token`).
 * @param {PushOptions} opts @param {TocsinClient|null} fallback
 */
function target(opts, fallback) {
  const client = opts.client ?? (opts.token === undefined ? fallback : null);
  const base = (client ? client.base : (opts.url ?? "")).replace(/\/+$/, "");
  /** @type {(() => Promise<string>)|null} */
  let getToken = null;
  if (client) getToken = () => client.getToken();
  else if (opts.token !== undefined) getToken = tokenGetter(opts.token);
  const worker = new URL(opts.serviceWorker ?? `${base}${SW_PATH}`, location.href);
  return { client, base, getToken, worker, scope: opts.scope, key: `${STORE_KEY}:${originOf(base)}` };
}

/** Whether this browser has what Web Push needs. */
export function pushSupported() {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator &&
    typeof PushManager !== "undefined" && typeof Notification !== "undefined";
}

/** @param {string} key @returns {PushSubscriptionInfo|null} */
function remembered(key) {
  try {
    const v = JSON.parse(localStorage.getItem(key) ?? "null");
    return v && typeof v.id === "string" && typeof v.endpoint === "string" ? v : null;
  } catch {
    return null;
  }
}

/** @param {string} key @param {PushSubscriptionInfo|null} v */
function remember(key, v) {
  try {
    if (v) localStorage.setItem(key, JSON.stringify(v));
    else localStorage.removeItem(key);
  } catch {
    /* storage may be unavailable: the server still has it */
  }
}

/** base64url (the server's VAPID key) to bytes. @param {string} s */
export function base64UrlToBytes(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=");
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** @param {ArrayBuffer|null|undefined} a @param {Uint8Array} b */
function sameKey(a, b) {
  if (!a || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

/** The registration's worker once it is active (push needs an active worker). @param {ServiceWorkerRegistration} reg */
function activated(reg) {
  if (reg.active) return Promise.resolve(reg);
  const w = reg.installing ?? reg.waiting;
  if (!w) return Promise.reject(new Error("The service worker did not install."));
  return new Promise((resolve, reject) => {
    const on = () => {
      if (w.state === "activated") {
        w.removeEventListener("statechange", on);
        resolve(reg);
      } else if (w.state === "redundant") {
        w.removeEventListener("statechange", on);
        reject(new Error("The service worker failed to install."));
      }
    };
    w.addEventListener("statechange", on);
    on();
  });
}

/** @param {ReturnType<typeof target>} t */
async function existingRegistration(t) {
  try {
    return (await navigator.serviceWorker.getRegistration(t.scope ?? t.worker.href)) ?? null;
  } catch {
    return null;
  }
}

/** @param {unknown} err @param {string} doing */
function explain(err, doing) {
  if (err instanceof HttpError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new Error(`Could not ${doing}: ${msg}`);
}

/**
 * Reach this browser by Web Push when its tabs are closed. Call it only from a user
 * gesture (a click): it asks for notification permission first. Reuses this
 * browser's subscription when it was made with the server's current key.
 * @param {PushOptions} [opts]
 * @param {TocsinClient|null} [fallback] the client to use when `opts` names none
 * @returns {Promise<PushSubscriptionInfo>}
 */
export async function subscribePush(opts = {}, fallback = null) {
  if (!pushSupported()) throw new Error("Web Push is not supported in this browser.");
  const t = target(opts, fallback);
  if (!t.getToken) throw new Error("subscribePush needs a client (connect() first) or a token.");
  if (t.worker.origin !== location.origin) {
    throw new Error(`The service worker must be on this page's origin (${location.origin}), ` +
      `not ${t.worker.origin}: serve one there and pass its path as serviceWorker (docs/client.md).`);
  }
  // Ask first, before any other await, while the click still counts as a user gesture.
  const permission = Notification.permission === "granted" ? "granted"
    : await (t.client ? t.client.requestBrowserPermission() : Notification.requestPermission());
  if (permission !== "granted") {
    throw new Error(permission === "denied"
      ? "Notifications are blocked for this site: allow them in the site settings to be notified when the tab is closed."
      : "Notification permission was not granted.");
  }
  /** @type {ServiceWorkerRegistration} */
  let reg;
  try {
    reg = await activated(await navigator.serviceWorker.register(t.worker.href,
      t.scope ? { scope: t.scope } : undefined));
  } catch (err) {
    throw explain(err, "register the service worker");
  }
  const res = await fetch(`${t.base}/api/push/vapid-public-key`).catch((err) => {
    throw explain(err, "reach the server");
  });
  if (!res.ok) throw await httpError(res);
  const { publicKey } = await res.json();
  if (typeof publicKey !== "string" || !publicKey) throw new Error("The server has no Web Push key.");
  const key = base64UrlToBytes(publicKey);
  /** @type {PushSubscription} */
  let sub;
  try {
    const old = await reg.pushManager.getSubscription();
    if (old && sameKey(old.options?.applicationServerKey, key)) sub = old;
    else {
      if (old) await old.unsubscribe();
      sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
  } catch (err) {
    throw explain(err, "subscribe to push messages");
  }
  const json = sub.toJSON();
  /** @type {{id: string}} */
  const made = await http(t.base, t.getToken, "POST", "/api/push-subscriptions",
    { endpoint: json.endpoint ?? sub.endpoint, keys: json.keys ?? {} });
  const info = { id: String(made.id), endpoint: sub.endpoint };
  remember(t.key, info);
  return info;
}

/**
 * Stop Web Push to this browser: the server forgets the subscription and the browser
 * drops it. Resolves true if there was one.
 * @param {PushOptions} [opts]
 * @param {TocsinClient|null} [fallback]
 * @returns {Promise<boolean>}
 */
export async function unsubscribePush(opts = {}, fallback = null) {
  if (!pushSupported()) return false;
  const t = target(opts, fallback);
  const reg = await existingRegistration(t);
  const sub = reg ? await reg.pushManager.getSubscription().catch(() => null) : null;
  let id = remembered(t.key)?.id ?? null;
  if (t.getToken) {
    const getToken = t.getToken;
    if (!id && sub) {
      // Not remembered (storage cleared): registering the same endpoint again answers
      // its id (the server's list shows only the push service's origin).
      const json = sub.toJSON();
      /** @type {{id: string}} */
      const again = await http(t.base, getToken, "POST", "/api/push-subscriptions",
        { endpoint: sub.endpoint, keys: json.keys ?? {} });
      id = String(again.id);
    }
    if (id) {
      try {
        await http(t.base, getToken, "DELETE", `/api/push-subscriptions/${encodeURIComponent(id)}`);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404)) throw err; // already gone
      }
    }
  }
  remember(t.key, null);
  if (sub) {
    try {
      await sub.unsubscribe();
    } catch (err) {
      throw explain(err, "unsubscribe this browser");
    }
  }
  return !!(sub || id);
}

/**
 * Where Web Push stands in this browser: `unsupported`, `denied` (the user blocked
 * notifications), `default` (never asked), `subscribed` (a subscription this client
 * handed to the server), or `unsubscribed`.
 * @param {PushOptions} [opts]
 * @param {TocsinClient|null} [fallback]
 * @returns {Promise<PushState>}
 */
export async function pushState(opts = {}, fallback = null) {
  if (!pushSupported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  if (Notification.permission !== "granted") return "default";
  const t = target(opts, fallback);
  const mine = remembered(t.key);
  if (!mine) return "unsubscribed";
  const reg = await existingRegistration(t);
  const sub = reg ? await reg.pushManager.getSubscription().catch(() => null) : null;
  return sub && sub.endpoint === mine.endpoint ? "subscribed" : "unsubscribed";
}
