// @ts-check
/**
 * Attention on the client (issue 10; docs/attention.md, docs/grouping.md): the
 * `updated`, `snoozed` and `digest` stream events, a `notification` event that
 * replaces a row (a group grew, a snoozed one came back), silent notifications,
 * preferences and snooze. Tolerant of fields a server does not send yet: a
 * notification without `silent` may interrupt, one without `group` is a single row.
 * @module tocsin/lib/attention
 */
import { compareToasts, num } from "./util.js";

/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */
/** @typedef {import("../tocsin.js").Preferences} Preferences */

/** The stream events this module handles besides `notification`. */
export const ATTENTION_EVENTS = ["updated", "snoozed", "digest", "preferences"];

/**
 * The host: the inbox client (lib/inbox.js), as far as this module touches it.
 * @typedef {object} AttentionHost
 * @property {Map<string, TocsinNotification>} items
 * @property {TocsinNotification[]} toasts
 * @property {number} serverUnread
 * @property {{notify(n: TocsinNotification): void, close(id: string): void}} os
 * @property {(method: string, path: string, body?: unknown) => Promise<any>} http
 * @property {() => import("../tocsin.js").Translator} i18n
 * @property {Preferences|null} prefs the preferences as last known
 */

/** Whether a notification may interrupt (toast, OS notification). @param {TocsinNotification} n */
export function interrupts(n) {
  return n.silent !== true;
}

/**
 * "Alice, Bob and 3 others" (in the locale's words) for a server group; "" for a
 * notification that is not a group of several people. People are counted once however
 * often they acted (`group.people`, counted by the server; older servers: the actors).
 * @param {import("../tocsin.js").Translator} i18n
 * @param {TocsinNotification} n
 * @param {(user: string) => string} [nameOf]
 */
export function groupActors(i18n, n, nameOf = (u) => u) {
  const g = n.group;
  if (!g || num(g.count) < 2) return "";
  const actors = [...new Set((Array.isArray(g.actors) ? g.actors : []).map(String).filter(Boolean))];
  if (actors.length === 0) return "";
  const people = Math.max(actors.length, num(g.people));
  const shown = actors.slice(0, people > 3 ? 2 : 3).map(nameOf);
  const others = people - shown.length;
  return i18n.join(others > 0 ? [...shown, i18n.t("group.others", { count: others })] : shown);
}

/** The digest toast's text. @param {import("../tocsin.js").Translator} i18n @param {number} count */
export function digestText(i18n, count) {
  return i18n.t("digest.toast", { count });
}

/**
 * A `notification` event for a notification already held: replace the row (the same
 * id, a new event id). The unread count rises only if the row was read before.
 * @param {AttentionHost} host @param {TocsinNotification} n
 * @returns {boolean} whether it interrupts (a group grew: toast again)
 */
export function replaceNotification(host, n) {
  const old = host.items.get(n.id);
  host.items.set(n.id, n);
  if (!n.read && (!old || old.read)) host.serverUnread++;
  return !n.read;
}

/**
 * Apply `updated`, `snoozed` or `digest`. Returns false for other events.
 * @param {AttentionHost} host @param {string} name @param {string} id @param {any} data
 */
export function applyAttention(host, name, id, data) {
  if (name === "updated") {
    /** @type {TocsinNotification} */
    const n = data;
    const old = n && n.id ? host.items.get(n.id) : undefined;
    if (!old) return true; // unknown: ignore
    host.items.set(n.id, { ...old, ...n, read: old.read, readAt: old.readAt });
    host.toasts = host.toasts.map((t) => (t.id === n.id ? { ...t, ...n } : t));
  } else if (name === "snoozed") {
    for (const nid of data?.ids ?? []) {
      host.items.delete(String(nid));
      host.os.close(String(nid));
    }
    if (data?.unreadCount != null) host.serverUnread = num(data.unreadCount);
  } else if (name === "preferences") {
    // saved in another tab or on another device (or this one: the same again)
    if (data?.preferences) host.prefs = normalizePreferences(data.preferences);
  } else if (name === "digest") {
    const count = num(data?.count);
    if (count <= 0) return true;
    /** @type {TocsinNotification} */
    const toast = {
      id: `tocsin-digest-${id}`, type: "tocsin.digest", title: digestText(host.i18n(), count), body: "",
      priority: "medium", timestamp: num(data?.until) || Date.now(), read: false, local: true,
      data: { count, since: num(data?.since), until: num(data?.until) },
    };
    if (!host.toasts.some((t) => t.id === toast.id)) {
      host.toasts.push(toast);
      host.toasts.sort(compareToasts);
    }
  } else {
    return false;
  }
  return true;
}

/** The default preferences (what GET returns for a user who saved nothing). @returns {Preferences} */
export function defaultPreferences() {
  return { types: {}, quietHours: null, dnd: null, urgentBypassesQuiet: true };
}

/** The browser's IANA time zone ("UTC" if it cannot say). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Time zones to offer (the browser's first). @returns {string[]} */
export function timeZones() {
  const own = browserTimeZone();
  /** @type {string[]} */
  let all = [];
  try {
    all = /** @type {any} */ (Intl).supportedValuesOf("timeZone");
  } catch {
    all = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles",
      "Asia/Tokyo", "Australia/Sydney"];
  }
  return [own, ...all.filter((z) => z !== own)];
}

/**
 * When "DND for 1 hour" / "until tomorrow" ends (ms since the epoch; tomorrow = 08:00
 * local time the next day).
 * @param {"hour"|"tomorrow"} span @param {number} [now]
 */
export function dndUntil(span, now = Date.now()) {
  if (span === "hour") return now + 3600_000;
  const d = new Date(now);
  d.setDate(d.getDate() + 1);
  d.setHours(8, 0, 0, 0);
  return d.getTime();
}

/** Whether a DND is on now. @param {Preferences|null} p @param {number} [now] */
export function dndActive(p, now = Date.now()) {
  return !!p?.dnd && num(p.dnd.until) > now;
}

/**
 * Fill in what a server did not send (an older server, or fields not there yet).
 * @param {any} p @returns {Preferences}
 */
export function normalizePreferences(p) {
  const d = defaultPreferences();
  if (!p || typeof p !== "object") return d;
  return {
    ...p,
    types: p.types && typeof p.types === "object" ? p.types : d.types,
    quietHours: p.quietHours ?? null,
    dnd: p.dnd ?? null,
    urgentBypassesQuiet: p.urgentBypassesQuiet !== false,
  };
}

/** The channels a type gets when neither the user nor the publisher chose (the server's). */
export const DEFAULT_CHANNELS = Object.freeze(/** @type {const} */ (["inbox", "interrupt", "push"]));

/** GET /api/preferences. @param {AttentionHost} host @returns {Promise<Preferences>} */
export async function loadPreferences(host) {
  return normalizePreferences(await host.http("GET", "/api/preferences"));
}

/**
 * PUT /api/preferences (the read-only `defaults` and `dnd.since` are left out).
 * @param {AttentionHost} host @param {Preferences} p @returns {Promise<Preferences>}
 */
export async function savePreferences(host, p) {
  const body = {
    types: p.types ?? {}, quietHours: p.quietHours ?? null,
    dnd: p.dnd ? { until: num(p.dnd.until) } : null,
    urgentBypassesQuiet: p.urgentBypassesQuiet !== false,
    // only when known: a server without email refuses fields it does not have
    ...(p.emailDigest ? { emailDigest: p.emailDigest } : {}),
  };
  return normalizePreferences(await host.http("PUT", "/api/preferences", body));
}

/**
 * Snooze a notification until `until` (ms since the epoch): it leaves the list at
 * once (the `snoozed` event confirms it) and comes back as a `notification` event.
 * @param {AttentionHost} host @param {string} id @param {number} until
 */
export async function snooze(host, id, until) {
  const had = host.items.get(id);
  host.items.delete(id);
  try {
    const r = await host.http("POST", `/api/notifications/${encodeURIComponent(id)}/snooze`, { until });
    if (r && r.unreadCount != null) host.serverUnread = num(r.unreadCount);
    return true;
  } catch (err) {
    if (had && !host.items.has(id)) host.items.set(id, had);
    throw err;
  }
}

/**
 * Bring a snoozed notification back now (`DELETE …/snooze`): the server sends it again
 * as a `notification` event, which puts the row back.
 * @param {AttentionHost} host @param {string} id
 */
export async function unsnooze(host, id) {
  await host.http("DELETE", `/api/notifications/${encodeURIComponent(id)}/snooze`);
  return true;
}

/** What is snoozed now (`?snoozed=true`), newest first. @param {AttentionHost} host */
export async function listSnoozed(host) {
  const page = await host.http("GET", "/api/notifications?snoozed=true&limit=200");
  return /** @type {TocsinNotification[]} */ (Array.isArray(page?.items) ? page.items : []);
}
