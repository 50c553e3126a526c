// @ts-check
/**
 * Incidents (docs/escalation.md) as the browser sees them: a notification that belongs
 * to one carries `data.incident` and `data.escalation: {round, step, nextAt}`; the inbox
 * adds `acked: {by, at, pending?}` once someone acknowledged it (lib/inbox.js `ack()`,
 * the stream's `acked` event). Pure helpers, shared by the components.
 * @module tocsin/lib/incidents
 */

/** @typedef {import("../tocsin.js").TocsinNotification} TocsinNotification */

/**
 * The incident id of a notification, or null when it is not part of one.
 * @param {TocsinNotification} n
 * @returns {string|null}
 */
export function incidentOf(n) {
  const id = n.data?.incident;
  return typeof id === "string" && id ? id : null;
}

/**
 * When the next escalation step is due (ms since the epoch), or null (the last step,
 * or not an incident).
 * @param {TocsinNotification} n
 * @returns {number|null}
 */
export function nextStepAt(n) {
  const esc = /** @type {{nextAt?: unknown}|null|undefined} */ (n.data?.escalation);
  const at = esc && typeof esc === "object" ? esc.nextAt : null;
  return typeof at === "number" && Number.isFinite(at) ? at : null;
}

/** "0:42", "12:05", "1:02:03". @param {number} ms */
export function formatDuration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** @typedef {import("../tocsin.js").Translator} Translator */

/**
 * "Now with Bob": who holds an unacknowledged incident at its current step (the step's
 * `targets`, by display name); "" when the server did not say.
 * @param {Translator} i18n @param {TocsinNotification} n
 * @param {(user: string) => string} [nameOf]
 */
export function holderText(i18n, n, nameOf = (u) => u) {
  const esc = /** @type {{targets?: unknown}|null|undefined} */ (n.data?.escalation);
  const targets = esc && Array.isArray(esc.targets) ? esc.targets.map(String).filter(Boolean) : [];
  return targets.length ? i18n.t("incident.holder", { names: i18n.join(targets.map(nameOf)) }) : "";
}

/**
 * The countdown line of an unacknowledged incident toast.
 * @param {Translator} i18n
 * @param {number} nextAt ms since the epoch
 * @param {number} [now]
 */
export function countdownText(i18n, nextAt, now = Date.now()) {
  return nextAt > now
    ? i18n.t("incident.countdown", { time: formatDuration(nextAt - now) })
    : i18n.t("incident.escalating");
}

/**
 * "Acknowledged by you at 09:14" / "Acknowledged by Bob at 09:14" (by the display name).
 * @param {Translator} i18n
 * @param {{by: string, at?: number}} acked @param {string} me the signed-in user
 * @param {(user: string) => string} [nameOf]
 */
export function ackedText(i18n, acked, me, nameOf = (u) => u) {
  const at = Number(acked.at);
  const time = at > 0 ? i18n.when(at) : "";
  if (acked.by === me) return time ? i18n.t("incident.ackedByYouAt", { time }) : i18n.t("incident.ackedByYou");
  const name = nameOf(acked.by);
  return time ? i18n.t("incident.ackedByAt", { name, time }) : i18n.t("incident.ackedBy", { name });
}
