// @ts-check
/**
 * Long-polling, the transport the connection falls back to when streaming does not work
 * (a proxy that buffers the SSE response): `GET <path>/poll?since=<id>&wait=<s>` answers
 * `{events: [{id, event, data}], lastEventId, expired?}` as soon as there are events after
 * `since`, or after `wait` seconds with none. The same ids, events and `reset` as the
 * stream; `expired: true` says the token expired while the poll was held (the next poll
 * needs a new one).
 * @module tocsin/lib/poll
 */
import { httpError } from "./util.js";

/**
 * @typedef {object} PollEvent
 * @property {string} id
 * @property {string} event
 * @property {any} data
 */

/**
 * @typedef {object} PollReply
 * @property {PollEvent[]} events
 * @property {string|null} lastEventId
 * @property {boolean} expired the token expired while the poll was held
 */

/** Seconds the server holds a poll with nothing to say (it allows at most 30). */
export const POLL_WAIT_S = 25;

/**
 * One poll. Throws {@link HttpError} for an error status (401/403: the token was refused;
 * 429: too many requests), and whatever `fetch` throws (network, `signal` aborted).
 * @param {string} url the poll URL (`…/poll`) without query
 * @param {string} token
 * @param {string|null} since
 * @param {AbortSignal} signal
 * @param {number} [wait] seconds
 * @returns {Promise<PollReply>}
 */
export async function pollOnce(url, token, since, signal, wait = POLL_WAIT_S) {
  const q = new URLSearchParams({ wait: String(wait) });
  if (since !== null) q.set("since", since);
  const res = await fetch(`${url}?${q}`, {
    headers: { Authorization: `Bearer ${token}` },
    cache: "no-store",
    signal,
  });
  if (!res.ok) throw await httpError(res);
  const body = await res.json();
  const events = Array.isArray(body?.events) ? body.events : [];
  const last = body?.lastEventId;
  return {
    events: events.filter(
      (/** @type {any} */ e) => e && typeof e.event === "string" && e.id != null,
    ).map((/** @type {any} */ e) => ({ id: String(e.id), event: e.event, data: e.data })),
    lastEventId: last == null || last === "" ? null : String(last),
    expired: body?.expired === true,
  };
}
