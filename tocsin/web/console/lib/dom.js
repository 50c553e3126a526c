// @ts-check
/**
 * DOM helpers: text is always set as text (never parsed as HTML); links only http(s).
 * @module console/dom
 */

/**
 * Create an element; string children become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>|null} [attrs] `text`, `on*` handlers, `dataset`, attributes
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "href") {
      const safe = safeUrl(String(v));
      if (safe) el.setAttribute("href", safe);
    } else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/**
 * The URL if it is http(s) (relative ones resolve against this page), else null.
 * @param {string} url
 */
export function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** @param {number|null|undefined} ms */
export function time(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** A `<time>` element for ms since the epoch. @param {number|null|undefined} ms */
export function timeEl(ms) {
  if (ms === null || ms === undefined) return h("span", { text: "—" });
  return h("time", { datetime: new Date(ms).toISOString(), text: time(ms) });
}

/** Replace an element's children. @param {Element} el @param {...(Node|string|null|undefined|false)} kids */
export function fill(el, ...kids) {
  el.replaceChildren();
  for (const k of kids) if (k !== null && k !== undefined && k !== false) el.append(k);
}

/** A status line (polite live region) for a view. */
export function statusLine() {
  return h("p", { class: "status", role: "status", "aria-live": "polite" });
}

/** The message of an error as text. @param {unknown} e */
export function message(e) {
  return e instanceof Error ? e.message : String(e);
}
