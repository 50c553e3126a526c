// @ts-check
/**
 * The console's one way to the server: the publisher API key from this tab's
 * session storage (never a cookie or a URL) in the Authorization header.
 * @module console/api
 */

const KEY = "tocsin.console.apiKey";

/** @returns {string|null} */
export function apiKey() {
  return sessionStorage.getItem(KEY);
}

/** @param {string} key */
export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  document.dispatchEvent(new CustomEvent("console:signed-out"));
}

/** An error reply of the API, with its code (`not_found`, `unauthorized`, ...). */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * GET a JSON route of this server.
 * @param {string} path e.g. `/api/console/figures`
 * @param {Record<string, string|number|undefined>} [params] query parameters (encoded here)
 * @returns {Promise<any>}
 */
export async function get(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  }
  const key = apiKey();
  const res = await fetch(url, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) {
    const err = body?.error ?? {};
    if (res.status === 401) signOut();
    throw new ApiError(res.status, String(err.code ?? res.status), String(err.message ?? res.statusText));
  }
  return body;
}
