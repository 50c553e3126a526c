// @ts-check
// The Tocsin demo page: pick a user, then watch notifications, toasts and the team
// activity feed update live. Everything here uses the public client API.
import { connect, HttpError, subscribeTopic, timeAgo } from "/static/tocsin/tocsin.js";
import "/static/tocsin/define.js";

const USERS = ["alice", "bob", "carol"];
const name = (/** @type {string} */ u) => u.charAt(0).toUpperCase() + u.slice(1);
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const params = new URLSearchParams(location.search);
let user = params.get("user") || localStorage.getItem("tocsin-demo-user") || "alice";
if (!USERS.includes(user)) user = "alice";
try { localStorage.setItem("tocsin-demo-user", user); } catch { /* private mode */ }
for (const a of document.querySelectorAll(".users a")) {
  if (/** @type {HTMLElement} */ (a).dataset.user === user) a.setAttribute("aria-current", "page");
}
$("whoami").textContent = `signed in as ${name(user)}`;
document.title = `${name(user)} · Tocsin demo`;

/** @type {{token: string, expiresAt: number, topic: string}|null} */
let minted = null;
/**
 * A fresh token whenever the one we have is about to expire or the server refused it (a
 * restarted server with another secret), as a real app would.
 * @param {{refused?: boolean}} [request]
 */
async function token(request) {
  if (!minted || request?.refused || minted.expiresAt - Date.now() < 60_000) {
    const res = await fetch(`/demo/api/token?user=${encodeURIComponent(user)}`);
    if (!res.ok) throw new Error(`could not get a demo token: ${res.status}`);
    minted = await res.json();
  }
  return /** @type {{token: string}} */ (minted).token;
}
await token();
const topic = /** @type {{topic: string}} */ (minted).topic;

// Links in demo notifications point at example.com: open them in a new tab.
// People by name, not id, wherever the components mention them (who acknowledged, who
// holds an incident, who is here).
const client = connect({ token, user, openUrl: (url) => window.open(url, "_blank", "noopener"),
  displayName: (u) => (USERS.includes(u) ? name(u) : null) });
const feed = subscribeTopic({ token, user, topic });
Object.assign(window, { tocsinClient: client, tocsinFeed: feed });
// Who is online: <tocsin-presence> on the same feed (no extra connection).
const who = /** @type {any} */ (document.getElementById("feed-presence"));
if (who) {
  who.setAttribute("topic", topic);
  who.feed = feed;
}

/** Titles of the notifications this tab has shown (a dismissed one leaves the list at once). */
const titles = new Map();
client.subscribe((s) => {
  for (const n of s.notifications) titles.set(n.id, n.title);
  $("role").textContent = `this tab: ${s.role === "follower" ? "sharing another tab's connection" : "holds the connection"}`;
});

// ---- activity feed --------------------------------------------------------------
const list = $("feed");
const stateEl = $("feed-state");
const replayEl = $("feed-replay");
const FEED_LABEL = {
  connected: "live", reconnecting: "reconnecting…", offline: "offline — will replay",
  disconnected: "connecting…", unauthorized: "signed out",
};

/** @param {any} ev */
function feedItem(ev) {
  const li = document.createElement("li");
  li.className = `ev ev-${ev.type}${ev.replayed ? " replayed" : ""}`;
  li.dataset.id = String(ev.id);
  const who = document.createElement("span");
  who.className = "avatar";
  who.setAttribute("aria-hidden", "true");
  who.textContent = (ev.actor || "?").charAt(0).toUpperCase();
  const text = document.createElement("span");
  text.className = "text";
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = ev.title;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = timeAgo(ev.timestamp);
  text.append(title, meta);
  if (ev.replayed) {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "replayed";
    text.append(tag);
  }
  li.append(who, text);
  return li;
}

// "Caught up: …" is news, not a state: it leaves after a while (a later replay, with
// another count, says so again).
const CAUGHT_UP_MS = Number(params.get("caughtUpMs")) || 8000;
let caughtUp = { count: 0, at: 0 };
/** @type {ReturnType<typeof setTimeout>|undefined} */
let caughtUpEnd;

/** @param {any} s */
function renderFeed(s) {
  stateEl.textContent = /** @type {any} */ (FEED_LABEL)[s.connectionStatus] ?? s.connectionStatus;
  stateEl.dataset.state = s.connectionStatus;
  if (s.replayedCount !== caughtUp.count) {
    caughtUp = { count: s.replayedCount, at: Date.now() };
    clearTimeout(caughtUpEnd);
    if (s.replayedCount) caughtUpEnd = setTimeout(() => renderFeed(feed.state), CAUGHT_UP_MS + 50);
  }
  replayEl.hidden = !s.replayedCount || Date.now() - caughtUp.at > CAUGHT_UP_MS;
  replayEl.textContent = s.replayedCount
    ? `Caught up: ${s.replayedCount} update${s.replayedCount === 1 ? "" : "s"} arrived while you were away.` : "";
  list.replaceChildren(...s.events.slice(0, 60).map(feedItem));
  if (!s.events.length && s.loaded) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "Nothing yet. Send something from the playground.";
    list.append(li);
  }
}
feed.subscribe(renderFeed);
setInterval(() => renderFeed(feed.state), 30000);

// What this user did goes to the team feed only once the server accepted it (an action
// the server refuses is undone, and nothing is reported). Until then, and while the feed
// cannot be reached (offline, server away), the update waits here, visibly, and goes out
// in order, exactly once, when the connection is back.
/** @type {{type: string, title: string, accepted: Promise<boolean>}[]} */
const outbox = [];
const pendingEl = $("feed-pending");
let posting = false;
function showOutbox() {
  // Online, an update passes through in a moment: say nothing unless the feed is away.
  const n = feed.state.connectionStatus === "connected" && navigator.onLine !== false ? 0 : outbox.length;
  pendingEl.hidden = n === 0;
  pendingEl.textContent = n
    ? `${n} update${n === 1 ? "" : "s"} of yours will be posted when the connection is back.`
    : "";
}
async function flushOutbox() {
  if (posting) return;
  posting = true;
  try {
    while (outbox.length) {
      const next = outbox[0];
      if (!(await next.accepted)) {
        outbox.shift(); // refused and undone: nothing happened, nothing to report
        showOutbox();
        continue;
      }
      if (feed.state.connectionStatus !== "connected") break;
      try {
        await feed.post({ type: next.type, title: next.title });
      } catch (err) {
        if (!(err instanceof HttpError)) break; // network: again when the feed is back
        console.warn("the feed refused an update", err); // refused by the server: drop it
      }
      outbox.shift();
      showOutbox();
    }
  } finally {
    posting = false;
    showOutbox();
  }
}
feed.subscribe((s) => {
  showOutbox();
  if (s.connectionStatus === "connected" && outbox.length) flushOutbox();
});
client.addEventListener("action", (e) => {
  const d = /** @type {CustomEvent<import("/static/tocsin/tocsin.js").ActionDetail>} */ (e).detail;
  const title = d.ids?.[0] ? titles.get(d.ids[0]) : undefined;
  const what = title ? `“${title}”` : "a notification";
  const line = {
    readAll: [`${name(user)} marked all notifications read`, "read_all"],
    read: [`${name(user)} read ${what}`, "read"],
    unread: [`${name(user)} marked ${what} unread`, "unread"],
    dismiss: [`${name(user)} dismissed ${what}`, "dismiss"],
    ack: [`${name(user)} acknowledged ${what}`, "ack"],
  }[d.kind];
  if (!line) return;
  outbox.push({ title: line[0], type: line[1], accepted: d.settled });
  showOutbox();
  flushOutbox();
});

// ---- playground -----------------------------------------------------------------
const form = /** @type {HTMLFormElement} */ ($("playground"));
const toSel = /** @type {HTMLSelectElement} */ ($("pg-to"));
// A newcomer's first click must show the product: sent to themselves, it arrives here
// as a toast and on the badge (sent to someone else, this page would only say "Sent").
toSel.value = user;
for (const o of toSel.options) if (o.value === user) o.textContent = `${name(user)} (you)`;
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const body = {
    to: [String(data.get("to"))], from: user, type: String(data.get("type") || "message"),
    title: String(data.get("title")), body: String(data.get("body") || ""),
    priority: String(data.get("priority")), url: String(data.get("url") || "") || null,
    groupKey: String(data.get("groupKey") || "") || null,
  };
  const out = $("pg-result");
  out.textContent = "Sending…";
  try {
    const r = await fetch("/demo/api/send", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const reply = await r.json();
    const to = body.to[0] === user ? "you" : name(body.to[0]);
    out.textContent = r.ok ? `Sent to ${to} ✓` : `Not sent: ${reply.error?.message ?? r.status}`;
  } catch {
    out.textContent = "Not sent: the server is unreachable.";
  }
});

// ---- the incident scenario -------------------------------------------------------
const incBtn = /** @type {HTMLButtonElement} */ ($("incident"));
incBtn.addEventListener("click", async () => {
  const out = $("inc-result");
  const waitSeconds = Number(/** @type {HTMLSelectElement} */ ($("inc-wait")).value) || 30;
  out.textContent = "Paging…";
  incBtn.disabled = true;
  try {
    const r = await fetch("/demo/api/incident", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ onCall: user, waitSeconds }),
    });
    const reply = await r.json();
    out.textContent = r.ok
      ? `${name(reply.onCall)} paged; escalates to ${name(reply.next)} in ${waitSeconds} s unless acknowledged.`
      : `Not started: ${reply.error?.message ?? r.status}`;
  } catch {
    out.textContent = "Not started: the server is unreachable.";
  } finally {
    incBtn.disabled = false;
  }
});

// ---- do not disturb (docs/attention.md): the header toggle shows the server's state --
const dndBox = $("dnd");
const dndSel = /** @type {HTMLSelectElement} */ ($("dnd-select"));
const dndOn = /** @type {HTMLOptionElement} */ (dndSel.querySelector('option[value="on"]'));
/** @type {ReturnType<typeof setTimeout>|undefined} */
let dndEnd;
/** @type {import("/static/tocsin/tocsin.js").Preferences|null} */
let dndShown = null;
/**
 * The header shows the client's one copy of the preferences (`state.preferences`): a
 * change in Preferences, another tab or another device shows here at once, worded as
 * the Preferences panel words it.
 * @param {import("/static/tocsin/tocsin.js").Preferences} p
 */
function showDnd(p) {
  dndShown = p;
  const until = p.dnd ? Number(p.dnd.until) : 0;
  const on = until > Date.now();
  const words = client.i18n();
  dndOn.hidden = !on;
  dndOn.textContent = on ? words.t("dnd.onUntil", { time: words.when(until) }) : words.t("dnd.on");
  dndSel.value = on ? "on" : "off";
  dndBox.dataset.state = on ? "on" : "off";
  dndBox.dataset.until = on ? String(until) : "";
  clearTimeout(dndEnd);
  // when it ends, the header says Off (nothing is saved then, so no event says so)
  if (on) dndEnd = setTimeout(() => showDnd(p), Math.min(until - Date.now() + 300, 2 ** 31 - 1));
}
client.subscribe((s) => {
  if (s.preferences && s.preferences !== dndShown) showDnd(s.preferences);
});
async function refreshDnd() {
  try {
    await client.preferences(); // state.preferences, then showDnd
  } catch { /* offline: keep what we show */ }
}
dndSel.addEventListener("change", async () => {
  const v = dndSel.value;
  let until = null;
  if (v === "hour") until = Date.now() + 3600_000;
  if (v === "tomorrow") {
    const d = new Date();
    d.setDate(d.getDate() + 1);
    d.setHours(8, 0, 0, 0);
    until = d.getTime();
  }
  dndSel.disabled = true;
  try {
    const current = await client.preferences(); // keep what the preferences panel set
    await client.savePreferences({ ...current, dnd: until ? { until } : null });
  } catch {
    await refreshDnd();
  } finally {
    dndSel.disabled = false;
  }
});
refreshDnd();

// ---- a simulated quiet period -------------------------------------------------------
/** "1 notification", "3 notifications". @param {number} n @param {string} what */
const plural = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
/**
 * What happened to the notifications, by the server's decisions.
 * @param {{reasons: Record<string, number>, skipped: number, interrupting: number}} reply
 */
function quietOutcome(reply) {
  const r = reply.reasons ?? {};
  const held = (r.dnd ?? 0) + (r.quiet_hours ?? 0);
  const parts = [];
  if (held) parts.push(`${plural(held, "notification")} held silently for one summary`);
  if (r.preferences) parts.push(`${r.preferences} silent by your preferences for its type (not in the summary)`);
  if (reply.interrupting) parts.push(`${reply.interrupting} interrupted anyway (urgent)`);
  if (reply.skipped) parts.push(`${reply.skipped} not delivered (your preferences)`);
  if (!held) parts.push("nothing waits for a summary, so none will come");
  return `${parts.join("; ")}.`;
}
const quietBtn = /** @type {HTMLButtonElement} */ ($("quiet"));
quietBtn.addEventListener("click", async () => {
  const out = $("quiet-result");
  const seconds = Number(params.get("quietSeconds")) || 8;
  quietBtn.disabled = true;
  try {
    const r = await fetch("/demo/api/quiet", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user, seconds, count: 3 }),
    });
    const reply = await r.json();
    if (!r.ok) {
      out.textContent = `Not started: ${reply.error?.message ?? r.status}`;
      return;
    }
    // Every claim below is what the server decided for each notification (the reply),
    // never what the scenario expected: quiet hours, per-type preferences and urgency
    // change the outcome.
    out.textContent = `Do not disturb for ${seconds} s: ${quietOutcome(reply)}`;
    await refreshDnd();
    const digest = reply.digest;
    if (!digest) return;
    const words = client.i18n();
    if (digest.at > reply.until + 1000) {
      out.textContent += ` Your quiet hours go on until ${words.when(digest.at)}: the summary comes then.`;
      return;
    }
    setTimeout(() => {
      out.textContent = `Quiet period over: one summary toast for ${plural(digest.count, "notification")}` +
        " instead of the interruptions.";
    }, Math.max(0, digest.at - Date.now()) + 300);
  } catch {
    out.textContent = "Not started: the server is unreachable.";
  } finally {
    quietBtn.disabled = false;
  }
});

// ---- simulated activity -----------------------------------------------------------
const gen = /** @type {HTMLButtonElement} */ ($("gen"));
/** @param {boolean} running */
function showGen(running) {
  gen.setAttribute("aria-pressed", String(running));
  gen.textContent = running ? "Stop simulated activity" : "Start simulated activity";
}
fetch("/demo/api/generator").then((r) => r.json()).then((s) => showGen(!!s.running)).catch(() => {});
gen.addEventListener("click", async () => {
  const running = gen.getAttribute("aria-pressed") !== "true";
  const r = await fetch("/demo/api/generator", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ running }),
  });
  if (r.ok) showGen(!!(await r.json()).running);
});

// ---- sent beyond the tab: Web Push and email ------------------------------------------
const reachBtn = /** @type {HTMLButtonElement} */ ($("reach-setup"));
/**
 * @typedef {object} Sent what GET /demo/api/sent answers (newest first)
 * @property {{user: string|null, device: string, status: number, at: number, title: string|null,
 *   body: string|null, priority: string|null}[]} push
 * @property {{to: string[], subject: string, at: number}[]} email
 * @property {boolean} smtp the demo's own SMTP server (false: the one given with --smtp-url)
 * @property {{user: string, device: string}[]} devices
 */
/** @param {string} cls @param {string} text */
const span = (cls, text) => {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
};
/** @param {HTMLElement} ol @param {HTMLElement[]} items @param {string} none */
function fill(ol, items, none) {
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = none;
    items = [li];
  }
  ol.replaceChildren(...items);
}
/** @param {Sent} s */
function showSent(s) {
  fill($("sent-push"), s.push.map((m) => {
    const li = document.createElement("li");
    li.append(span("what", m.title ?? "(unreadable payload)"),
      m.body ? ` — ${m.body}` : "", document.createElement("br"),
      span("meta", `to ${m.device} · ${m.priority ?? "?"} · ${m.status === 201 ? "delivered" : `answered ${m.status}`} · ${timeAgo(m.at)}`));
    return li;
  }), s.devices.length ? "Nothing pushed yet." : "No closed-tab devices yet.");
  fill($("sent-email"), s.email.map((m) => {
    const li = document.createElement("li");
    li.append(span("what", m.subject), document.createElement("br"),
      span("meta", `to ${m.to.join(", ")} · ${timeAgo(m.at)}`));
    return li;
  }), s.smtp ? "No email yet." : "Emails go to the SMTP server given with --smtp-url.");
  const said = $("reach-result");
  if (s.devices.length && !said.textContent) {
    said.textContent = `Simulated devices: ${s.devices.map((d) => d.device).join(", ")}`;
  }
}
async function refreshSent() {
  try {
    const r = await fetch("/demo/api/sent");
    if (r.ok) showSent(await r.json());
  } catch {
    /* the server is restarting: the next poll tries again */
  }
}
reachBtn.addEventListener("click", async () => {
  const out = $("reach-result");
  reachBtn.disabled = true;
  try {
    const r = await fetch("/demo/api/reach", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ emailAfter: Number(params.get("emailAfter") || 10) }),
    });
    if (!r.ok) throw new HttpError(r.status, (await r.json().catch(() => null))?.error?.message ?? r.statusText);
    const { users } = await r.json();
    out.textContent = `Done: ${users.map((/** @type {{email: string}} */ u) => u.email).join(", ")}`;
    await refreshSent();
  } catch (err) {
    out.textContent = `Could not set it up: ${err instanceof Error ? err.message : err}`;
  } finally {
    reachBtn.disabled = false;
  }
});

// ---- webhooks: the chat room and the app backend ----------------------------------------
/**
 * @typedef {object} Hooks what GET /demo/api/hooks answers (newest first)
 * @property {{text: string, verified: boolean, at: number}[]} chat
 * @property {{id: string|null, verified: boolean, type: string|null,
 *   data: {user?: string|null, notification?: string|null}|null, at: number}[]} backend
 * @property {boolean} chatTarget whether the webhook channel gave the chat room a target
 */
/** @param {Hooks} h */
function showHooks(h) {
  fill($("hooks-chat"), h.chat.map((m) => {
    const li = document.createElement("li");
    li.append(span("what", m.text || "(empty message)"), document.createElement("br"),
      span("meta", `${m.verified ? "signed" : "unsigned"} · ${timeAgo(m.at)}`));
    return li;
  }), h.chatTarget ? "No chat message yet: page the on-call above." : "No chat target: the webhook channel did not accept the demo's own address.");
  fill($("hooks-backend"), h.backend.map((e) => {
    const li = document.createElement("li");
    const who = e.data?.user ? ` by ${e.data.user}` : "";
    li.append(span("what", `${e.type ?? "?"}${who}`), document.createElement("br"),
      span("meta", `${e.verified ? "signature verified" : "signature did NOT verify"} · ${e.id ?? ""} · ${timeAgo(e.at)}`));
    return li;
  }), "No event yet: read or dismiss a notification.");
}
async function refreshHooks() {
  try {
    const r = await fetch("/demo/api/hooks");
    if (r.ok) showHooks(await r.json());
  } catch {
    /* the server is restarting: the next poll tries again */
  }
}
refreshSent();
refreshHooks();
setInterval(() => {
  if (document.visibilityState === "visible") {
    refreshSent();
    refreshHooks();
  }
}, 2000);
