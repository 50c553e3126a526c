// @ts-check
/**
 * <console-figures>: the node's live figures over the last minutes, from
 * GET /api/console/figures (the server samples its own figures; this only plots them).
 * @module console/views/figures
 */
import { apiKey, get } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { fill, h, message, statusLine } from "../lib/dom.js";

const REFRESH_MS = 2000;

export class ConsoleFigures extends HTMLElement {
  constructor() {
    super();
    /** @type {number|undefined} */
    this.timer = undefined;
    this.states = h("div", { class: "states", "aria-live": "polite" });
    this.charts = h("div", { class: "charts" });
    this.status = statusLine();
  }

  connectedCallback() {
    fill(this, h("h2", { text: "Node" }), this.states, this.charts, this.status);
  }

  disconnectedCallback() {
    clearTimeout(this.timer);
  }

  /** Called by the shell when this view is shown or hidden. @param {boolean} on */
  active(on) {
    clearTimeout(this.timer);
    if (on) this.refresh();
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const data = await get("/api/console/figures");
      this.draw(data);
      this.status.textContent = "";
    } catch (e) {
      this.status.textContent = `Could not read the figures: ${message(e)}`;
    }
    if (this.isConnected && !this.closest("[hidden]") && apiKey()) {
      this.timer = window.setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  /** @param {any} data */
  draw(data) {
    /** @type {any[]} */
    const samples = data.samples ?? [];
    const last = samples[samples.length - 1];
    const node = document.getElementById("node");
    if (node) node.textContent = data.node ? `node ${data.node}` : "";
    if (!last) {
      fill(this.states, h("p", { class: "muted", text: "No sample yet: the first comes within seconds." }));
      fill(this.charts);
      return;
    }
    const state = (/** @type {string} */ name, /** @type {string} */ value) =>
      h("p", { class: `state ${value === "ok" ? "ok" : "bad"}`, dataset: { state: name } },
        h("span", { class: "label", text: `${name}: ` }), h("strong", { text: value }));
    fill(this.states, state("Broker", last.broker), state("Database", last.database));
    const pick = (/** @type {(s: any) => number} */ f) => samples.map(f);
    fill(this.charts,
      lineChart("Connections by transport", [
        { name: "SSE", values: pick((s) => s.connections.sse) },
        { name: "WebSocket", values: pick((s) => s.connections.ws) },
        { name: "Long-poll", values: pick((s) => s.connections.poll) },
      ], "chart-connections"),
      lineChart("Publishes and deliveries per second", [
        { name: "Publishes", values: pick((s) => s.publishesPerSecond), unit: "/s" },
        { name: "Notifications", values: pick((s) => s.notificationsPerSecond), unit: "/s" },
        { name: "Deliveries", values: pick((s) => s.deliveriesPerSecond), unit: "/s" },
      ], "chart-rates"),
      lineChart(`Outbox overflows and resets (per ${Math.round((data.intervalMs ?? 2000) / 1000)} s)`, [
        { name: "Overflows", values: pick((s) => s.overflows) },
        { name: "Resets", values: pick((s) => s.resets) },
      ], "chart-trouble"),
    );
  }
}
