// @ts-check
/**
 * The console's shell: sign-in with a publisher API key (kept in this tab's
 * sessionStorage only), the tabs (arrow keys, Home/End, as the ARIA tabs pattern
 * says) and the views' elements.
 * @module console
 */
import { apiKey, get, signIn, signOut } from "./lib/api.js";
import { message } from "./lib/dom.js";
import { ConsoleFailures } from "./views/failures.js";
import { ConsoleFigures } from "./views/figures.js";
import { ConsoleIncidents } from "./views/incidents.js";
import { ConsolePresence } from "./views/presence.js";
import { ConsoleSearch } from "./views/search.js";

customElements.define("console-figures", ConsoleFigures);
customElements.define("console-search", ConsoleSearch);
customElements.define("console-incidents", ConsoleIncidents);
customElements.define("console-failures", ConsoleFailures);
customElements.define("console-presence", ConsolePresence);

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const tabs = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('[role="tab"]')]);

/** @param {HTMLButtonElement} tab @param {boolean} [focus] */
function select(tab, focus = false) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    const panel = $(/** @type {string} */ (t.getAttribute("aria-controls")));
    panel.hidden = !on;
    const view = /** @type {any} */ (panel.firstElementChild);
    if (view && typeof view.active === "function") view.active(on);
  }
  if (focus) tab.focus();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => select(tab));
  tab.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(tab);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    select(tabs[(to + tabs.length) % tabs.length], true);
  });
}

function showApp(on) {
  $("signin").hidden = on;
  $("app").hidden = !on;
  $("signout").hidden = !on;
  if (on) select(tabs.find((t) => t.getAttribute("aria-selected") === "true") ?? tabs[0]);
  else (/** @type {HTMLInputElement} */ ($("api-key"))).focus();
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("api-key"));
  const error = $("signin-error");
  error.textContent = "";
  signIn(input.value.trim());
  try {
    await get("/api/stats"); // a publisher route: checks the key
    input.value = "";
    showApp(true);
  } catch (err) {
    signOut();
    error.textContent = `Sign-in failed: ${message(err)}`;
  }
});

$("signout").addEventListener("click", () => signOut());
document.addEventListener("console:signed-out", () => showApp(false));

showApp(Boolean(apiKey()));
