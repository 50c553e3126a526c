// @ts-check
/**
 * Tocsin browser client: a live, shared, optimistic notification store.
 *
 *   import { connect } from "/static/tocsin/tocsin.js";
 *   const client = connect({ url: "https://tocsin.example.com", token });
 *   client.subscribe((state) => render(state.notifications, state.unreadCount));
 *
 * This is the entry point; the parts are in lib/:
 *
 * - lib/connection.js: one server connection per browser and user (Web Locks leader
 *   election, BroadcastChannel, EventSource, resume, backoff, online/offline);
 * - lib/live.js: the core the inbox and topic feeds share (snapshot over HTTP kept
 *   current by the stream, refetch on `reset`, listeners);
 * - lib/inbox.js: the inbox store (`TocsinClient`); lib/actions.js: optimistic actions
 *   and the offline queue; lib/os-notify.js: OS notifications;
 * - lib/topic.js: topic activity feeds (`TopicFeed`);
 * - lib/push.js: Web Push (`subscribePush()`; the service worker is sw.js);
 * - lib/ids.js: event ids (`"<epoch>-<seq>"`, opaque to everything else);
 *   lib/util.js: small helpers;
 * - lib/i18n.js + lib/locales/: every string the components show, in the user's language.
 *
 * Plain ES modules, no dependencies, no build step. Types: tocsin.d.ts.
 * @module tocsin
 */
import { TocsinClient } from "./lib/inbox.js";
import { TopicPresence } from "./lib/presence.js";
import * as push from "./lib/push.js";
import { TopicFeed } from "./lib/topic.js";

export { TocsinClient } from "./lib/inbox.js";
export { TopicFeed } from "./lib/topic.js";
export { reportPresence, TopicPresence } from "./lib/presence.js";
export { pushSupported } from "./lib/push.js";
export { addLocale, ENGLISH, locales, translator, Translator } from "./lib/i18n.js";
export {
  compareToasts, HttpError, PRIORITY_RANK, safeUrl, timeAgo, tokenSubject, VERSION,
} from "./lib/util.js";

/** @type {TocsinClient|null} */
let defaultClient = null;

/**
 * The first client created with {@link connect}, which components use by default.
 * @returns {TocsinClient|null}
 */
export function getDefaultClient() {
  return defaultClient;
}

/**
 * Connect to a Tocsin server as one user. The first client becomes the default one
 * that `<tocsin-bell>`, `<tocsin-toasts>` and `<tocsin-status>` attach to.
 * @param {import("./tocsin.js").ConnectOptions} opts
 * @returns {TocsinClient}
 */
export function connect(opts) {
  const client = new TocsinClient(opts);
  if (!defaultClient) {
    defaultClient = client;
    document.dispatchEvent(new CustomEvent("tocsin:client", { detail: client }));
  }
  return client;
}

/**
 * Who is on a topic, live (and report this browser's own state).
 * @param {import("./tocsin.js").PresenceOptions} opts
 * @returns {TopicPresence}
 */
export function trackPresence(opts) {
  return new TopicPresence(opts);
}

/**
 * Follow a topic's activity feed.
 * @param {import("./tocsin.js").TopicOptions} opts
 * @returns {TopicFeed}
 */
export function subscribeTopic(opts) {
  return new TopicFeed(opts);
}

/**
 * Reach this browser by Web Push while its tabs are closed (docs/client.md). Call it only
 * from a click: it asks for notification permission. Uses `opts.client`, else the
 * default client, for the server and the token.
 * @param {import("./tocsin.js").PushOptions} [opts]
 * @returns {Promise<import("./tocsin.js").PushSubscriptionInfo>}
 */
export function subscribePush(opts = {}) {
  return push.subscribePush(opts, defaultClient);
}

/**
 * Stop Web Push to this browser (the server forgets the subscription too).
 * @param {import("./tocsin.js").PushOptions} [opts]
 * @returns {Promise<boolean>}
 */
export function unsubscribePush(opts = {}) {
  return push.unsubscribePush(opts, defaultClient);
}

/**
 * `unsupported` | `denied` | `default` | `subscribed` | `unsubscribed`.
 * @param {import("./tocsin.js").PushOptions} [opts]
 * @returns {Promise<import("./tocsin.js").PushState>}
 */
export function pushState(opts = {}) {
  return push.pushState(opts, defaultClient);
}
