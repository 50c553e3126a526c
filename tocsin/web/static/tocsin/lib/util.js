// @ts-check
/**
 * Small helpers shared by the client modules: URLs, tokens, time, toast order, HTTP.
 * @module tocsin/lib/util
 */
import { pageLocale, translator } from "./i18n.js";
import { compareIds } from "./ids.js";

/** @typedef {import("../tocsin.js").Priority} Priority */
/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */
/**
 * A token, or a function the client calls for one on every (re)connect; `refused` is true
 * when the server refused the last token (mint a new one rather than return a cached one).
 * @typedef {string | ((request: {refused: boolean}) => string | Promise<string>)} TokenOption
 */

export const VERSION = "0.1.0";

/** @type {Readonly<Record<Priority, number>>} */
export const PRIORITY_RANK = Object.freeze({ urgent: 0, high: 1, medium: 2, low: 3 });

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
 * @returns {number}
 */
export function compareToasts(a, b) {
  return (
    (PRIORITY_RANK[a.priority] ?? 2) - (PRIORITY_RANK[b.priority] ?? 2) ||
    a.timestamp - b.timestamp ||
    compareIds(a.eventId, b.eventId)
  );
}

/**
 * "just now", "2 min. ago", "vor 3 Std.", or a date a week on: `Intl.RelativeTimeFormat`
 * in `locale` (default: the page's `lang`, else the browser's).
 * @param {number} ts ms epoch
 * @param {number} [now]
 * @param {string} [locale]
 * @returns {string}
 */
export function timeAgo(ts, now = Date.now(), locale) {
  return translator(pageLocale(locale)).ago(ts, now);
}

/**
 * A finite number, or 0 (for counts and timestamps from the server).
 * @param {unknown} v
 */
export function num(v) {
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
 * The `HttpError` for a refused answer, with the message and code of Tocsin's error
 * body when it has one (else the status text).
 * @param {Response} res
 * @returns {Promise<HttpError>}
 */
export async function httpError(res) {
  let message = res.statusText || `HTTP ${res.status}`;
  let code;
  try {
    const err = (await res.json()).error;
    if (err?.message) message = err.message;
    code = err?.code;
  } catch {
    /* not JSON */
  }
  return new HttpError(res.status, message, code);
}

/**
 * A fetch helper with the bearer token and Tocsin's error body.
 * @param {string} base
 * @param {() => Promise<string>} getToken
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>} the JSON answer (null for none)
 */
export async function http(base, getToken, method, path, body) {
  const token = await getToken();
  /** @type {Record<string, string>} */
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await httpError(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The origin of a server base URL ("" resolves against the page).
 * @param {string} base
 * @returns {string}
 */
export function originOf(base) {
  try {
    return new URL(base || "/", location.href).origin;
  } catch {
    return base;
  }
}

/**
 * A function returning the current token, whether a string or a function was given.
 * @param {TokenOption} t
 * @param {() => boolean} [refused] whether the server refused the last token
 * @returns {() => Promise<string>}
 */
export function tokenGetter(t, refused = () => false) {
  return typeof t === "function"
    ? async () => String(await t({ refused: refused() }))
    : async () => String(t);
}
