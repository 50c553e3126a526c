// @ts-check
/**
 * Registers `<tocsin-bell>`, `<tocsin-toasts>` and `<tocsin-status>` (once; safe to import
 * twice). Import the component classes from `./components/*.js` to register them under
 * other names or to subclass them.
 * @module tocsin/define
 */
import { TocsinBell } from "./components/bell.js";
import { TocsinStatus } from "./components/status.js";
import { TocsinToasts } from "./components/toasts.js";

/** @type {[string, CustomElementConstructor][]} */
const ELEMENTS = [
  ["tocsin-bell", TocsinBell],
  ["tocsin-toasts", TocsinToasts],
  ["tocsin-status", TocsinStatus],
];

for (const [name, cls] of ELEMENTS) {
  if (!customElements.get(name)) customElements.define(name, cls);
}

export { TocsinBell, TocsinStatus, TocsinToasts };
export * from "./tocsin.js";
