// @ts-check
/**
 * `<tocsin-status>`: tells the user when live updates are not flowing.
 * Shows nothing while connected; "Reconnecting…" (after `delay` ms, default 800, so a
 * quick hand-over between tabs does not flash), an offline banner, or "Signed out" when
 * the server refused the token; "Live (polling)" while connected by long-polling (the
 * fallback when streaming does not work).
 * Attributes: `delay` (ms), `theme`.
 * @module tocsin/components/status
 */
import { h, THEME, TocsinElement } from "./common.js";

/** The catalogue key of each state's message (lib/locales/). */
export const MESSAGES = Object.freeze(/** @type {const} */ ({
  reconnecting: "status.reconnecting",
  offline: "status.offline",
  unauthorized: "status.unauthorized",
  polling: "status.polling",
}));

const STYLES = `${THEME}
:host { display: block; }
.banner { margin: 0; padding: 8px 16px; font-size: 14px; text-align: center;
  background: var(--_warn-bg); color: var(--_warn-fg); border-bottom: 1px solid var(--_border); }
.banner[hidden] { display: none; }
.banner .retry { margin-inline-start: 10px; font: inherit; font-size: 13px; font-weight: 600; cursor: pointer;
  color: inherit; background: transparent; border: 1px solid currentColor; border-radius: 6px; padding: 2px 10px; }
@media (max-width: 480px) { .banner .retry { min-height: 44px; font-size: 16px; } }
.banner.polling { background: transparent; color: var(--_muted, inherit); font-size: 12px; padding: 2px 16px; }
.banner.unauthorized, .banner.offline { background: var(--tocsin-offline-bg, #344054); color: var(--tocsin-offline-fg, #ffffff); }
`;

export class TocsinStatus extends TocsinElement {
  constructor() {
    super();
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    /** @type {string} */
    this.shown = "";
  }

  setup() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: "open" });
    const style = h("style");
    style.textContent = STYLES;
    this.banner = h("p", { class: "banner", part: "banner", hidden: true });
    // The live region exists before any text goes in, so screen readers announce it.
    this.region = h("div", { role: "status", "aria-live": "polite" }, this.banner);
    root.append(style, this.region);
  }

  teardown() {
    clearTimeout(this.timer);
  }

  /** @param {import("../tocsin.js").ClientState} s */
  update(s) {
    const status = s.connectionStatus;
    if (status === "offline" || status === "unauthorized") {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.show(status);
    } else if (status === "reconnecting") {
      if (this.shown === "offline" || this.shown === "unauthorized") this.show("reconnecting");
      else if (this.shown !== "reconnecting" && this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          if (this.client?.connectionStatus === "reconnecting") this.show("reconnecting");
        }, this.numAttr("delay", 800));
      }
    } else {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.show(status === "connected" && s.transport === "poll" ? "polling" : "");
    }
  }

  /** @param {""|"offline"|"reconnecting"|"unauthorized"|"polling"} what */
  show(what) {
    this.shown = what;
    this.setAttribute("state", what || "ok");
    if (!this.banner) return;
    this.banner.hidden = !what;
    this.banner.className = `banner ${what}`;
    this.banner.textContent = what ? this.t(MESSAGES[what]) : "";
    // Reconnecting waits out a backoff: let the user try at once.
    if (what === "reconnecting") {
      this.banner.append(h("button", { type: "button", class: "retry", part: "retry",
        onclick: () => this.client?.retry() }, this.t("status.retry")));
    }
  }
}
