// The progress bars in the strip under the header (#jobs): one a job, upload or model
// switch, found again by its key. What they measure is the caller's.

import { $, h } from "./dom.js";

// The bar for `key`, made on first use, labelled `label`.
export function jobBar(key, label) {
  let el = document.getElementById("job-" + key);
  if (!el) {
    el = h("div", { class: "job", id: "job-" + key },
      h("span", { class: "label" }), h("div", { class: "track" }, h("div", { class: "fill" })), h("span", { class: "pct" }));
    $("#jobs").appendChild(el);
  }
  el.querySelector(".label").textContent = label;
  return el;
}

// Fills the bar to `frac` (0 to 1) with `text` beside it.
export function setBar(el, frac, text) {
  el.querySelector(".fill").style.width = Math.round(100 * Math.max(0, Math.min(1, frac))) + "%";
  el.querySelector(".pct").textContent = text;
}
