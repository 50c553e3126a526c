// @ts-check
/**
 * `<tocsin-presence topic="…">`: who is on a topic right now, as initials avatars
 * (idle members dimmed), live. A list with an accessible name ("3 people here"); each
 * member's name and state are its text for assistive technology.
 * Attributes: `topic` (required), `token` + `server` (else the default client's),
 * `max` (avatars shown before "+N", default 8), `theme`.
 * Set `el.feed = topicFeed` to share a feed the page already has.
 * @module tocsin/components/presence
 */
import { localeFor } from "../lib/i18n.js";
import { getDefaultClient, translator } from "../tocsin.js";
import { TopicPresence } from "../lib/presence.js";
import { h, THEME } from "./common.js";

const STYLES = `${THEME}
:host { display: inline-flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.caption { color: var(--_muted); font-size: 13px; }
.caption:empty { display: none; }
ul { display: flex; flex-wrap: wrap; gap: 4px; margin: 0; padding: 0; list-style: none; align-items: center; }
li { display: inline-flex; }
.avatar { width: 30px; height: 30px; border-radius: 50%; display: inline-flex; align-items: center;
  justify-content: center; font-size: 12px; font-weight: 600; color: var(--_accent-fg);
  background: var(--_accent); border: 2px solid var(--_bg); position: relative; }
li.idle .avatar { opacity: .45; }
.more { background: var(--_hover-bg); color: var(--_fg); }
.empty { color: var(--_muted); font-size: 13px; }
`;

/** @param {string} name */
export function initials(name) {
  const parts = name.split(/[\s._@-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : name.slice(0, 2);
  return s.toUpperCase();
}

export class TocsinPresence extends HTMLElement {
  constructor() {
    super();
    /** @type {import("../tocsin.js").TopicFeed|null} */
    this._feed = null;
    /** @type {TopicPresence|null} */
    this.presence = null;
    /** @type {(() => void)|null} */
    this.unsub = null;
    this.onDefault = () => this.start();
  }

  get feed() {
    return this._feed;
  }

  /** This element's words (its `lang`, the default client's locale, the page's). */
  get i18n() {
    const client = getDefaultClient();
    return translator(localeFor(this, client), client?.strings);
  }

  set feed(f) {
    this._feed = f;
    if (this.isConnected) this.start();
  }

  connectedCallback() {
    if (!this.shadowRoot) {
      const root = this.attachShadow({ mode: "open" });
      const style = h("style");
      style.textContent = STYLES;
      this.list = h("ul", { part: "list", "aria-label": this.i18n.t("presence.nobody") });
      this.live = h("span", { class: "sr-only", role: "status", "aria-live": "polite" });
      // The count, visible: the avatars alone did not say what they were.
      this.caption = h("span", { class: "caption", part: "caption", "aria-hidden": "true" });
      root.append(style, this.list, this.caption, this.live);
    }
    this.start();
  }

  disconnectedCallback() {
    document.removeEventListener("tocsin:client", this.onDefault);
    this.stop();
  }

  stop() {
    this.unsub?.();
    this.unsub = null;
    this.presence?.disconnect();
    this.presence = null;
  }

  start() {
    this.stop();
    const topic = this.getAttribute("topic");
    if (!topic) return;
    const token = this.getAttribute("token");
    const server = this.getAttribute("server") ?? "";
    if (this._feed) {
      const client = getDefaultClient();
      this.presence = new TopicPresence({
        topic, feed: this._feed, url: server || client?.base,
        token: token ?? (client ? () => client.getToken() : undefined),
      });
    } else if (token) {
      this.presence = new TopicPresence({ topic, url: server, token });
    } else {
      const client = getDefaultClient();
      if (!client) {
        document.addEventListener("tocsin:client", this.onDefault, { once: true });
        return;
      }
      this.presence = new TopicPresence({ topic, url: client.base, token: () => client.getToken() });
    }
    /** @type {string[]} */
    let before = [];
    this.unsub = this.presence.subscribe((members) => {
      this.render(members);
      const now = members.map((m) => m.user);
      if (before.length) {
        const joined = now.filter((u) => !before.includes(u));
        const left = before.filter((u) => !now.includes(u));
        const t = this.i18n;
        const said = [...joined.map((u) => t.t("presence.joined", { name: this.nameOf(u) })),
          ...left.map((u) => t.t("presence.left", { name: this.nameOf(u) }))];
        if (this.live && said.length) this.live.textContent = t.join(said);
      }
      before = now;
    });
  }

  /** A user's display name (`connect({displayName})`), else the id. @param {string} user */
  nameOf(user) {
    return getDefaultClient()?.displayName(user) ?? user;
  }

  /** @param {import("../tocsin.js").PresenceMember[]} members */
  render(members) {
    if (!this.list) return;
    const max = Math.max(1, Number(this.getAttribute("max") ?? 8) || 8);
    const n = members.length;
    const t = this.i18n;
    this.list.setAttribute("aria-label", n === 0 ? t.t("presence.nobody") : t.t("presence.count", { count: n }));
    this.setAttribute("count", String(n));
    const items = members.slice(0, max).map((m) => {
      const name = this.nameOf(m.user);
      const label = m.state === "idle" ? t.t("presence.idle", { name }) : name;
      return h("li", { class: m.state, title: label, dataset: { user: m.user, state: m.state } },
        h("span", { class: "avatar", "aria-hidden": "true", text: initials(m.user) }),
        h("span", { class: "sr-only", text: label }));
    });
    if (n > max) {
      items.push(h("li", { class: "more-item" },
        h("span", { class: "avatar more", "aria-hidden": "true", text: `+${t.num(n - max)}` }),
        h("span", { class: "sr-only", text: t.t("presence.more", { count: n - max }) })));
    }
    if (n === 0) items.push(h("li", { class: "empty", text: t.t("presence.nobody") }));
    this.list.replaceChildren(...items);
    if (this.caption) this.caption.textContent = n ? t.t("presence.count", { count: n }) : "";
  }
}
