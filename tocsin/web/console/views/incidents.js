// @ts-check
/**
 * <console-incidents>: open and recent escalation incidents (GET
 * /api/console/incidents), and the chosen one's timeline and acknowledgement
 * (GET /api/incidents/{id}).
 * @module console/views/incidents
 */
import { get } from "../lib/api.js";
import { fill, h, message, statusLine, timeEl } from "../lib/dom.js";

/** @param {any} e a timeline entry of GET /api/incidents/{id} */
function entryText(e) {
  switch (e.kind) {
    case "notified":
      return `step ${e.step} (round ${e.round}): notified ${e.user}${e.active === true ? " (active)" : e.active === false ? " (not active)" : ""}`;
    case "waitSkipped":
    case "skipped":
      return `step ${e.step} (round ${e.round}): wait skipped, nobody was active`;
    case "acked": return `acknowledged${e.user ? ` by ${e.user}` : ""}`;
    case "exhausted": return "exhausted: nobody acknowledged";
    case "failed": return `failed at step ${e.step}`;
    default: return String(e.kind);
  }
}

export class ConsoleIncidents extends HTMLElement {
  constructor() {
    super();
    this.which = h("select", { id: "incidents-state", onchange: () => this.refresh() },
      h("option", { value: "open", text: "Open" }),
      h("option", { value: "recent", text: "Recent (all states)" }));
    this.list = h("ul", { class: "incidents", "aria-label": "Incidents" });
    this.detail = h("div", { class: "incident-detail" });
    this.status = statusLine();
  }

  connectedCallback() {
    fill(this, h("h2", { text: "Incidents" }),
      h("p", { class: "controls" },
        h("label", { for: "incidents-state", text: "Show " }), this.which, " ",
        h("button", { type: "button", onclick: () => this.refresh(), text: "Refresh" })),
      this.status, h("div", { class: "split" }, this.list, this.detail));
  }

  /** @param {boolean} on */
  active(on) {
    if (on) this.refresh();
  }

  async refresh() {
    try {
      const data = await get("/api/console/incidents", { state: this.which.value });
      /** @type {any[]} */
      const items = data.incidents ?? [];
      this.status.textContent = items.length ? `${items.length} incident(s).` : "No incidents.";
      fill(this.list, ...items.map((i) => h("li", { dataset: { incident: i.id, state: i.state } },
        h("button", { type: "button", class: "link", onclick: () => this.show(i.id) },
          h("strong", { text: i.title ?? i.policy }), " ",
          h("span", { class: `badge ${i.state}`, text: i.state })),
        h("span", { class: "muted" }, " policy ", i.policy, " · ", timeEl(i.createdAt)))));
    } catch (e) {
      this.status.textContent = `Could not list incidents: ${message(e)}`;
    }
  }

  /** @param {string} id */
  async show(id) {
    try {
      const inc = await get(`/api/incidents/${encodeURIComponent(id)}`);
      /** @type {any[]} */
      const timeline = inc.timeline ?? [];
      const heading = h("h3", { tabindex: "-1", text: `Incident ${inc.id}` });
      fill(this.detail,
        h("article", { class: "incident", dataset: { incident: inc.id } },
          heading,
          h("p", null, "State ", h("strong", { text: inc.state }), " · policy ", inc.policy,
            " · opened ", timeEl(inc.createdAt)),
          inc.ackedBy ? h("p", { class: "ack" }, "Acknowledged by ", h("strong", { text: inc.ackedBy }), " at ", timeEl(inc.ackedAt)) : null,
          inc.error ? h("p", { class: "error", text: `Error: ${inc.error}` }) : null,
          inc.next?.at ? h("p", null, `Next: step ${inc.next.step} (round ${inc.next.round}) at `, timeEl(inc.next.at)) : null,
          h("ol", { class: "timeline", "aria-label": "Timeline" },
            ...timeline.map((e) => h("li", { class: "step", dataset: { kind: e.kind } }, timeEl(e.at), " ", h("span", { class: "what", text: entryText(e) }))))));
      heading.focus();
    } catch (e) {
      fill(this.detail, h("p", { class: "error", text: `Could not read the incident: ${message(e)}` }));
    }
  }
}
