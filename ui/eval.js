// The evaluation panel: an uploaded truth file ({query, path, start, end} moments) is
// searched and ranked by the server, as `vidseek eval` does; the report is its recall,
// mAP and the misses.

import { sendJson } from "./api.js";
import { $, basename, clock, h, showError } from "./dom.js";

export async function runEval(file) {
  const out = $("#eval-report");
  out.textContent = "Evaluating " + file.name + "…";
  try {
    const truth = JSON.parse(await file.text());
    const r = await sendJson("POST", "/api/eval", truth);
    out.replaceChildren(scoreTable(r));
    if (r.misses.length) out.append(h("h4", null, "Misses"), h("ul", { class: "misses" }, r.misses.map((m) => h("li", null, missLine(m)))));
    showError(null);
  } catch (e) {
    out.textContent = "";
    showError(file.name + ": " + e.message);
  }
}

function scoreTable(r) {
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const heads = ["queries", "moments", "R@1", "R@5", "R@10", "mAP", "median peak error"];
  return h("table", { class: "eval" }, h("tbody", null,
    h("tr", null, heads.map((t) => h("th", null, t))),
    h("tr", null,
      h("td", null, r.queries), h("td", null, r.moments),
      h("td", { id: "eval-r1" }, pct(r.recall_at_1)), h("td", null, pct(r.recall_at_5)), h("td", null, pct(r.recall_at_10)),
      h("td", { id: "eval-map" }, r.map.toFixed(3)),
      h("td", null, r.median_peak_error == null ? "–" : r.median_peak_error.toFixed(2) + " s"))));
}

// “query” file start–end: its rank, and what came first when it was not.
function missLine(m) {
  return "“" + m.query + "” " + basename(m.path) + " " + clock(m.start) + "–" + clock(m.end) + ": " +
    (m.rank ? "rank " + m.rank : "not in the first 10") +
    (m.first ? "; first came " + basename(m.first.path) + " " + clock(m.first.start) + "–" + clock(m.first.end) + (m.first_is_truth ? " (also in the truth)" : "") : "");
}
