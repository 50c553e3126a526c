// @ts-check
/**
 * A small line chart in SVG (no library): one figure per set of series, its latest
 * values written out as text beside it, so a screen reader reads the figures and
 * not the drawing.
 * @module console/chart
 */
import { h } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const W = 300, H = 80;

/**
 * @typedef {{ name: string, values: number[], unit?: string }} Series
 */

/**
 * @param {string} title
 * @param {Series[]} series same length each, oldest first
 * @param {string} id a stable id (tests and labels)
 */
export function lineChart(title, series, id) {
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  series.forEach((s, i) => {
    const n = s.values.length;
    if (n === 0) return;
    const pts = s.values.map((v, j) => {
      const x = n === 1 ? W : (j / (n - 1)) * W;
      const y = H - (v / max) * (H - 4) - 2;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("class", `series s${i}`);
    line.setAttribute("fill", "none");
    svg.append(line);
  });
  const latest = h("dl", { class: "latest" });
  series.forEach((s, i) => {
    const v = s.values.length ? s.values[s.values.length - 1] : 0;
    latest.append(
      h("div", { dataset: { series: s.name } },
        h("dt", null, h("span", { class: `swatch s${i}`, "aria-hidden": "true" }), s.name),
        h("dd", { text: `${fmt(v)}${s.unit ?? ""}` })));
  });
  return h("figure", { class: "chart", id, "aria-labelledby": `${id}-title` },
    h("figcaption", { id: `${id}-title`, text: title }),
    svg, latest,
    h("p", { class: "axis muted", text: `peak ${fmt(max)} over the last ${series[0]?.values.length ?? 0} samples` }));
}

/** @param {number} v */
function fmt(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
