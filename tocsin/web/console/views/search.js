// @ts-check
/**
 * <console-search>: find notifications by user, notification id or idempotency key
 * and show each one's trail as a timeline per recipient (GET
 * /api/notifications/{id}/trail, GET /api/trail?user= | ?idempotencyKey=).
 * @module console/views/search
 */
import { ApiError, get } from "../lib/api.js";
import { fill, h, message, statusLine } from "../lib/dom.js";
import { trailView } from "./trail.js";

export class ConsoleSearch extends HTMLElement {
  constructor() {
    super();
    this.by = h("select", { id: "search-by", name: "by" },
      h("option", { value: "user", text: "User" }),
      h("option", { value: "id", text: "Notification id" }),
      h("option", { value: "key", text: "Idempotency key" }));
    this.query = h("input", { id: "search-q", name: "q", type: "search", required: true,
      autocomplete: "off", spellcheck: "false", maxlength: "200" });
    this.status = statusLine();
    this.results = h("div", { class: "results" });
    this.form = h("form", { class: "search", role: "search", onsubmit: (/** @type {Event} */ e) => {
      e.preventDefault();
      this.search();
    } },
      h("label", { for: "search-by", text: "Search by" }), this.by,
      h("label", { for: "search-q", text: "Value" }), this.query,
      h("button", { type: "submit", text: "Search" }));
  }

  connectedCallback() {
    fill(this, h("h2", { text: "Search" }), this.form, this.status, this.results);
  }

  /** @param {boolean} on */
  active(on) {
    if (on) this.query.focus();
  }

  async search() {
    const q = this.query.value.trim();
    if (!q) return;
    this.status.textContent = "Searching…";
    fill(this.results);
    try {
      /** @type {any[]} */
      let found;
      if (this.by.value === "id") {
        found = [await get(`/api/notifications/${encodeURIComponent(q)}/trail`)];
      } else if (this.by.value === "key") {
        found = (await get("/api/trail", { idempotencyKey: q })).notifications ?? [];
      } else {
        found = (await get("/api/trail", { user: q })).notifications ?? [];
      }
      this.status.textContent = found.length === 1 ? "1 notification." : `${found.length} notifications.`;
      fill(this.results, ...found.map(trailView));
    } catch (e) {
      this.status.textContent = e instanceof ApiError && e.status === 404
        ? "Nothing found." : `Search failed: ${message(e)}`;
    }
  }
}
