// @ts-check
/**
 * Registers `<tocsin-bell>`, `<tocsin-toasts>`, `<tocsin-status>` and `<tocsin-presence>` (once; safe to import
 * twice). Import the component classes from `./components/*.js` to register them under
 * other names or to subclass them.
 * @module tocsin/define
 */
import { TocsinBell } from "./components/bell.js";
import { TocsinPresence } from "./components/presence.js";
import { TocsinStatus } from "./components/status.js";
import { TocsinToasts } from "./components/toasts.js";

/** @type {[string, CustomElementConstructor][]} */
const ELEMENTS = [
  ["tocsin-bell", TocsinBell],
  ["tocsin-toasts", TocsinToasts],
  ["tocsin-status", TocsinStatus],
  ["tocsin-presence", TocsinPresence],
];

for (const [name, cls] of ELEMENTS) {
  if (!customElements.get(name)) customElements.define(name, cls);
}

export { TocsinBell, TocsinPresence, TocsinStatus, TocsinToasts };
export * from "./tocsin.js";
