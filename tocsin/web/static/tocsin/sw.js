// @ts-check
/**
 * Tocsin's service worker: shows Web Push notifications while no tab of the app is open
 * and handles their clicks. A classic worker (no imports), registered by
 * `subscribePush()` (lib/push.js) from `/static/tocsin/sw.js`, scope `/static/tocsin/`:
 * push reaches a worker whatever its scope, so it needs no wider one.
 *
 * - `push`: the payload is JSON `{id, title, body, url, priority, type, timestamp,
 *   readToken}`; it becomes a notification (tag = id, so a device never shows one twice;
 *   urgent ones stay until the user acts). A payload that is not that still shows a
 *   generic notification: browsers penalise a push that shows nothing.
 * - `notificationclick`: closes it, marks it read on the Tocsin server
 *   (`POST /api/push/read {token: readToken}`; the worker has no user token) and opens
 *   its url when it is http(s) (focusing a window already on it), else the app's root.
 *
 * The worker must be on the page's origin. An app on another origin than the Tocsin
 * server serves its own worker file that names the server and imports this one:
 *
 *   self.TOCSIN_SERVER = "https://tocsin.example.com";
 *   importScripts("https://tocsin.example.com/static/tocsin/sw.js");
 *
 * Type-checked on its own with the webworker lib (tests/web/tsconfig.sw.json).
 */

const sw = /** @type {ServiceWorkerGlobalScope & {TOCSIN_SERVER?: unknown, tocsinSw?: unknown}} */ (
  /** @type {unknown} */ (self));

/**
 * @typedef {object} PushPayload what the Tocsin server pushes (decrypted)
 * @property {string} id
 * @property {string} title
 * @property {string} [body]
 * @property {string|null} [url]
 * @property {"urgent"|"high"|"medium"|"low"} [priority]
 * @property {string} [type]
 * @property {number} [timestamp] ms since the epoch
 * @property {string} [readToken] marks it read without a user token
 */

/**
 * @typedef {object} NoteData what a shown notification keeps for its click
 * @property {string|null} id
 * @property {string|null} url an http(s) URL, or null
 * @property {string|null} readToken
 */

const GENERIC_TITLE = "New notification";

/** The Tocsin server's base URL: `self.TOCSIN_SERVER` if a wrapper set it, else this origin. */
function serverBase() {
  const s = sw.TOCSIN_SERVER;
  if (typeof s === "string" && /^https?:\/\//i.test(s)) return s.replace(/\/+$/, "");
  return sw.location.origin;
}

/** The absolute URL if http(s), else null. @param {unknown} url */
function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const u = new URL(url, sw.location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** @param {unknown} v @param {number} max */
function text(v, max) {
  return typeof v === "string" ? v.slice(0, max) : "";
}

/**
 * The payload as Tocsin sends it, or null when it is not one.
 * @param {{json(): any, text(): string}|null} data @returns {PushPayload|null}
 */
function parsePayload(data) {
  if (!data) return null;
  let p;
  try {
    p = data.json();
  } catch {
    return null;
  }
  if (!p || typeof p !== "object" || typeof p.title !== "string" || !p.title) return null;
  return p;
}

/**
 * The notification a push shows: its title and options (text stays text: the
 * Notifications API never renders HTML).
 * @param {PushPayload|null} p
 * @returns {{title: string, options: NotificationOptions & {timestamp?: number, requireInteraction?: boolean}}}
 */
function notificationFor(p) {
  if (!p) {
    return { title: GENERIC_TITLE, options: { body: "Open the app to see it.", tag: "tocsin-generic",
      data: /** @type {NoteData} */ ({ id: null, url: null, readToken: null }) } };
  }
  const id = typeof p.id === "string" && p.id ? p.id : null;
  /** @type {NoteData} */
  const data = { id, url: safeUrl(p.url), readToken: typeof p.readToken === "string" ? p.readToken : null };
  /** @type {NotificationOptions & {timestamp?: number, requireInteraction?: boolean}} */
  const options = {
    body: text(p.body, 1000),
    data,
    requireInteraction: p.priority === "urgent",
  };
  if (id) options.tag = id;
  if (typeof p.timestamp === "number" && Number.isFinite(p.timestamp)) options.timestamp = p.timestamp;
  return { title: text(p.title, 200), options };
}

/** Show the notification for a push's data. @param {{json(): any, text(): string}|null} data */
function showPush(data) {
  const { title, options } = notificationFor(parsePayload(data));
  return sw.registration.showNotification(title, options);
}

/** Mark a pushed notification read with its read token. @param {string|null} token */
async function markRead(token) {
  if (!token) return false;
  const res = await fetch(`${serverBase()}/api/push/read`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
    credentials: "omit",
  });
  return res.ok;
}

/**
 * Where a click goes: the notification's http(s) url, else the app's root (this
 * worker's origin).
 * @param {NoteData|null|undefined} data
 */
function clickTarget(data) {
  return safeUrl(data?.url) ?? new URL("/", sw.location.href).href;
}

/** Focus a window already on `url`, else open one. @param {string} url */
async function focusOrOpen(url) {
  const wins = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  const same = wins.find((c) => c.url === url);
  if (same) return same.focus();
  return sw.clients.openWindow(url);
}

/**
 * What a click does: close, mark read, open. Resolves to what happened (for tests).
 * @param {Notification} notification
 * @returns {Promise<{read: boolean, opened: string, openError: string|null}>}
 */
async function handleClick(notification) {
  notification.close();
  const data = /** @type {NoteData|null} */ (notification.data);
  const url = clickTarget(data);
  // Open at once (the click's permission to open a window is short-lived), mark in parallel.
  const opening = focusOrOpen(url).then(() => null, (err) => String(err?.message ?? err));
  const read = markRead(data?.readToken ?? null).catch(() => false);
  const [openError, wasRead] = await Promise.all([opening, read]);
  return { read: wasRead, opened: url, openError };
}

/**
 * `event.waitUntil`, tolerating an event the page or a test dispatched itself (whose
 * waitUntil throws).
 * @param {ExtendableEvent} event @param {Promise<unknown>} p
 */
function keepAlive(event, p) {
  const quiet = p.catch((err) => console.warn("tocsin sw:", err));
  try {
    event.waitUntil(quiet);
  } catch {
    /* an untrusted event: nothing to extend */
  }
}

sw.addEventListener("push", (event) => {
  keepAlive(event, showPush(event.data));
});

sw.addEventListener("notificationclick", (event) => {
  keepAlive(event, handleClick(event.notification));
});

sw.addEventListener("install", () => {
  sw.skipWaiting();
});

sw.addEventListener("activate", (event) => {
  keepAlive(event, sw.clients.claim());
});

// For tests and wrappers: the handlers without their events.
sw.tocsinSw = { showPush, handleClick, clickTarget, notificationFor, serverBase };
