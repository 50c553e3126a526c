// Type declarations for define.js: the components, registered as custom elements.
import type { TocsinClient } from "./tocsin.js";

export * from "./tocsin.js";

/**
 * Every component shows one client: the one set with `el.client = client`, else one made
 * from its `token` (and `server`, default: this origin) attributes, else the first client
 * made with `connect()` (or by another element from its attributes).
 */
declare class TocsinElement extends HTMLElement {
  client: TocsinClient | null;
}
/** `<tocsin-bell theme="light|dark" align="left|right">` */
export declare class TocsinBell extends TocsinElement {
  readonly expanded: boolean;
  show(): void;
  hide(refocus?: boolean): void;
  toggle(): void;
}
/** `<tocsin-toasts max-visible duration-urgent duration-high duration-medium duration-low position theme>` */
export declare class TocsinToasts extends TocsinElement {
  readonly maxVisible: number;
}
/** `<tocsin-status delay theme>` */
export declare class TocsinStatus extends TocsinElement {}
/** `<tocsin-presence topic token server max theme>`: who is on the topic, live. */
export declare class TocsinPresence extends HTMLElement {
  /** a feed of the topic to share (else one is made from the attributes or default client) */
  feed: import("./tocsin.js").TopicFeed | null;
  readonly presence: import("./tocsin.js").TopicPresence | null;
}

declare global {
  interface HTMLElementTagNameMap {
    "tocsin-bell": TocsinBell;
    "tocsin-toasts": TocsinToasts;
    "tocsin-status": TocsinStatus;
    "tocsin-presence": TocsinPresence;
  }
}
