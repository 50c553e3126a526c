// @ts-check
/**
 * Event ids (stream positions). The server sends them as opaque strings
 * `"<epoch>-<seq>"` (e.g. `"3f9a02c1-42"`); a stream never written is at `"0"`; servers
 * from before epochs send plain decimals (`"42"`). The rules (see tocsin/ids.py):
 *
 * - seqs compare only within one epoch;
 * - seq 0 ("before the first event") fits every epoch;
 * - an id whose epoch differs from the one held is newer by definition (the stream was
 *   recreated; the server also sends `reset`, whose id is adopted whatever its epoch).
 *
 * This is the only module that looks inside an id.
 * @module tocsin/lib/ids
 */

/**
 * @typedef {object} Position a parsed event id
 * @property {string} epoch "" for a plain decimal or position 0
 * @property {number} seq
 */

const ID = /^(?:([0-9a-z]{1,16})-)?([0-9]{1,18})$/;

/**
 * Parse an event id; null for anything that is not one.
 * @param {unknown} id
 * @returns {Position|null}
 */
export function parseId(id) {
  if (typeof id === "number") id = String(id);
  if (typeof id !== "string") return null;
  const m = ID.exec(id.trim());
  return m ? { epoch: m[1] ?? "", seq: Number(m[2]) } : null;
}

/**
 * Is `id` after `held` (the position this client holds; null: none yet)?
 * An id that does not parse is never newer.
 * @param {unknown} id
 * @param {unknown} held
 */
export function isNewer(id, held) {
  const a = parseId(id);
  if (!a) return false;
  const h = held == null ? null : parseId(held);
  if (!h) return true;
  if (a.seq === 0) return false;
  if (h.seq === 0 || a.epoch === h.epoch) return a.seq > h.seq;
  return true; // another epoch: the stream was recreated, this id is from the new one
}

/**
 * Sort order for ids of one stream: negative if `a` is before `b`. Ids of different
 * epochs do not compare (0); missing ids count as position 0.
 * @param {unknown} a
 * @param {unknown} b
 */
export function compareIds(a, b) {
  const pa = parseId(a) ?? { epoch: "", seq: 0 };
  const pb = parseId(b) ?? { epoch: "", seq: 0 };
  if (pa.epoch === pb.epoch || pa.seq === 0 || pb.seq === 0) return pa.seq - pb.seq;
  return 0;
}

/**
 * The exclusive `before` cursor that covers every event up to and including `upTo`:
 * the next position in the same epoch, or `"0"` (covers nothing) for none or position 0.
 * @param {string|null} upTo
 * @returns {string}
 */
export function cursorAfter(upTo) {
  const p = parseId(upTo);
  if (!p || p.seq === 0) return "0";
  return p.epoch ? `${p.epoch}-${p.seq + 1}` : String(p.seq + 1);
}
