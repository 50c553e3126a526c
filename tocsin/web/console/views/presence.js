// @ts-check
/**
 * <console-presence>: the topics someone is present on (GET /api/console/presence)
 * and, for the chosen topic, who and in which state (GET /api/topics/{topic}/presence).
 * @module console/views/presence
 */
import { get } from "../lib/api.js";
import { fill, h, message, statusLine, timeEl } from "../lib/dom.js";

export class ConsolePresence extends HTMLElement {
  constructor() {
    super();
    this.topics = h("ul", { class: "topics", "aria-label": "Topics with someone present" });
    this.members = h("div", { class: "members" });
    this.status = statusLine();
  }

  connectedCallback() {
    fill(this, h("h2", { text: "Presence" }),
      h("p", { class: "controls" },
        h("button", { type: "button", onclick: () => this.refresh(), text: "Refresh" })),
      this.status, h("div", { class: "split" }, this.topics, this.members));
  }

  /** @param {boolean} on */
  active(on) {
    if (on) this.refresh();
  }

  async refresh() {
    try {
      const data = await get("/api/console/presence");
      /** @type {any[]} */
      const topics = data.topics ?? [];
      this.status.textContent = topics.length ? `${topics.length} topic(s) with someone present.` : "Nobody is present on any topic.";
      fill(this.topics, ...topics.map((t) => h("li", { dataset: { topic: t.topic } },
        h("button", { type: "button", class: "link", onclick: () => this.show(t.topic) },
          h("span", { text: t.topic }), " ",
          h("span", { class: "badge", text: `${t.members} present` })))));
    } catch (e) {
      this.status.textContent = `Could not read presence: ${message(e)}`;
    }
  }

  /** @param {string} topic */
  async show(topic) {
    try {
      const data = await get(`/api/topics/${encodeURIComponent(topic)}/presence`);
      /** @type {any[]} */
      const members = data.members ?? [];
      const heading = h("h3", { tabindex: "-1", text: `Present on ${topic}` });
      fill(this.members, heading,
        h("ul", { class: "people", dataset: { topic } }, ...members.map((m) =>
          h("li", { dataset: { user: m.user, state: m.state } },
            h("strong", { text: m.user }), " ", h("span", { class: `badge ${m.state}`, text: m.state }),
            h("span", { class: "muted" }, " since ", timeEl(m.since))))));
      heading.focus();
    } catch (e) {
      fill(this.members, h("p", { class: "error", text: `Could not read ${topic}: ${message(e)}` }));
    }
  }
}
