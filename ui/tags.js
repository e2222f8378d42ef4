// Tags: the facet list of the tags in use (clicking one shows only its moments), picked
// moments saved as a named tag (a probe), and the editor of the label vocabulary every
// moment is tagged from.

import { api, sendJson } from "./api.js";
import { $, h, showError } from "./dom.js";
import { showSelection } from "./results.js";
import { searchNow } from "./search.js";
import { state } from "./state.js";

// The tags in use, as a facet list: clicking one shows only its moments.
export async function loadFacets() {
  try {
    const d = await api("/api/tags");
    const box = $("#facets");
    box.replaceChildren();
    box.hidden = d.tags.length === 0;
    for (const t of d.tags.slice(0, 60)) {
      box.append(h("button", {
        type: "button",
        class: "facet" + (state.tags.includes(t.label) ? " on" : ""),
        dataset: { label: t.label },
        title: t.moments + " moments in " + t.videos + " videos",
        onclick: () => toggleTag(t.label),
      }, t.label, h("span", { class: "n" }, t.moments)));
    }
  } catch (e) { /* tags are optional */ }
}

function toggleTag(label) {
  const i = state.tags.indexOf(label);
  if (i >= 0) state.tags.splice(i, 1); else state.tags.push(label);
  document.querySelectorAll(".facet").forEach((f) => f.classList.toggle("on", state.tags.includes(f.dataset.label)));
  state.weaker = false; searchNow();
}

// The picked moments (and the typed text) as a tag: every moment like them gets it.
export async function saveAsTag() {
  if (!state.picked.size) return;
  const name = (prompt("Name the tag for moments like these:") || "").trim();
  if (!name) return;
  try {
    await sendJson("POST", "/api/probes", { name, q: $("#q").value.trim(), like: Array.from(state.picked.keys()) });
    state.picked.clear(); showSelection(); showError(null); loadFacets();
  } catch (e) { showError(e.message); }
}

export async function loadLabels() {
  try {
    const d = await api("/api/labels");
    $("#labels-text").value = d.labels.join("\n");
    $("#labels-default").textContent = d.default ? "Now: the default vocabulary (" + d.labels.length + " labels)." : "Now: this library's own " + d.labels.length + " labels.";
  } catch (e) { showError(e.message); }
}

// Saves the edited vocabulary (or, with reset, goes back to the default): the server
// tags every moment again, so the facets are reloaded and none stays switched on.
export async function saveLabels(reset) {
  const st = $("#labels-status");
  st.textContent = "Tagging…";
  try {
    const labels = $("#labels-text").value.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const d = reset ? await api("/api/labels", { method: "DELETE" }) : await sendJson("PUT", "/api/labels", { labels });
    st.textContent = "Saved: " + d.labels.length + " labels; every moment is tagged again.";
    showError(null); loadLabels(); state.tags = []; loadFacets();
  } catch (e) { st.textContent = ""; showError(e.message); }
}
