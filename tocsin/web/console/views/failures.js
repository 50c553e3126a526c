// @ts-check
/**
 * <console-failures>: the channels' recent failures (GET /api/console/failures):
 * push gone or given up, email failed with the SMTP reply, webhook paused, ... Any
 * channel that reports `<channel>.<gone|failed|given_up|paused>` shows here; the
 * channel filter is built from what the server returns.
 * @module console/views/failures
 */
import { get } from "../lib/api.js";
import { fill, h, message, statusLine, timeEl } from "../lib/dom.js";

export class ConsoleFailures extends HTMLElement {
  constructor() {
    super();
    this.channel = h("select", { id: "failures-channel", onchange: () => this.draw() },
      h("option", { value: "", text: "All channels" }));
    this.body = h("tbody");
    /** @type {any[]} */
    this.items = [];
    this.status = statusLine();
  }

  connectedCallback() {
    fill(this, h("h2", { text: "Channel failures" }),
      h("p", { class: "controls" },
        h("label", { for: "failures-channel", text: "Channel " }), this.channel, " ",
        h("button", { type: "button", onclick: () => this.refresh(), text: "Refresh" })),
      this.status,
      h("div", { class: "scroll" },
        h("table", { class: "failures" },
          h("caption", { class: "visually-hidden", text: "Recent channel failures, newest first" }),
          h("thead", null, h("tr", null,
            h("th", { scope: "col", text: "When" }), h("th", { scope: "col", text: "Channel" }),
            h("th", { scope: "col", text: "What" }), h("th", { scope: "col", text: "User" }),
            h("th", { scope: "col", text: "Notification" }), h("th", { scope: "col", text: "Reason" }))),
          this.body)));
  }

  /** @param {boolean} on */
  active(on) {
    if (on) this.refresh();
  }

  async refresh() {
    try {
      const data = await get("/api/console/failures");
      this.items = data.failures ?? [];
      const known = new Set([...this.channel.options].map((o) => o.value));
      for (const f of this.items) {
        if (!known.has(f.channel)) {
          known.add(f.channel);
          this.channel.append(h("option", { value: f.channel, text: f.channel }));
        }
      }
      this.draw();
    } catch (e) {
      this.status.textContent = `Could not list failures: ${message(e)}`;
    }
  }

  draw() {
    const only = this.channel.value;
    const rows = this.items.filter((f) => !only || f.channel === only);
    this.status.textContent = rows.length ? `${rows.length} failure(s).` : "No failures recorded on this node.";
    fill(this.body, ...rows.map((f) => h("tr", { dataset: { kind: f.kind } },
      h("td", null, timeEl(f.at)), h("td", { text: f.channel }),
      h("td", { text: String(f.what ?? "").replaceAll("_", " ") }), h("td", { text: f.user ?? (f.target ? `target ${f.target}` : "") }),
      h("td", { class: "mono", text: f.notification ?? "" }), h("td", { text: f.reason ?? "" }))));
  }
}
