// @ts-check
/**
 * The trail drawn as a timeline per recipient (the shape is docs/trail.md's: steps
 * in time order, each with `kind`, `at`, `by`, `detail` and a `summary` to show;
 * unknown kinds are shown by their summary).
 * @module console/views/trail
 */
import { h, timeEl } from "../lib/dom.js";

/** Kinds that went wrong or held something back: drawn as warnings. */
const WARN = /(^decision$)|\.(gone|failed|given_up|paused|suppressed)$/;

/**
 * A step's text: the server's summary, underscores shown as spaces.
 * @param {any} step
 */
export function summaryOf(step) {
  const s = typeof step.summary === "string" && step.summary ? step.summary : String(step.kind ?? "");
  return s.replaceAll("_", " ");
}

/** @param {any} step */
function isWarning(step) {
  if (step.kind === "decision") return step.detail?.decision !== "delivered";
  return WARN.test(String(step.kind ?? ""));
}

/**
 * One notification's trail: a heading, then per recipient an ordered list of steps.
 * @param {any} n `{notification, type, priority, createdAt, recipients: [{user, steps}]}`
 */
export function trailView(n) {
  const title = n.notification ? `Notification ${n.notification}` : "Not delivered (no notification row)";
  const meta = [n.type && `type ${n.type}`, n.priority && `priority ${n.priority}`].filter(Boolean).join(", ");
  const article = h("article", { class: "trail", dataset: { notification: n.notification ?? "" } },
    h("h3", { text: title }),
    meta || n.createdAt ? h("p", { class: "muted" }, meta, n.createdAt ? " · created " : "", n.createdAt ? timeEl(n.createdAt) : "") : null);
  for (const r of n.recipients ?? []) {
    const list = h("ol", { class: "timeline", "aria-label": `Trail of ${r.user}` });
    for (const step of r.steps ?? []) {
      const by = step.by ? h("span", { class: "by muted", text: ` by ${step.by}` }) : null;
      list.append(h("li", { class: isWarning(step) ? "step warn" : "step", dataset: { kind: String(step.kind ?? "") } },
        timeEl(step.at), " ", h("span", { class: "what", text: summaryOf(step) }), by));
    }
    if (!(r.steps ?? []).length) list.append(h("li", { class: "muted", text: "Nothing recorded." }));
    article.append(h("section", { class: "recipient", dataset: { user: String(r.user) } },
      h("h4", { text: String(r.user) }), list));
  }
  return article;
}
