// The search: what is asked (the typed text, the filters bar and the tag facets as tokens
// of the query language; a picture, a stored frame or picked moments to search like) and
// sending it, newest question wins. Drawing the answer is results.js's; the facets
// themselves are tags.js's.

import { api } from "./api.js";
import { $, basename, plural, showError } from "./dom.js";
import { saveAddress } from "./links.js";
import { render, showSelection } from "./results.js";
import { state } from "./state.js";

const IDLE = "Type to search. Results update as you type.";

// Search as you type: a quarter second after the last keystroke.
export function scheduleSearch() {
  clearTimeout(state.timer);
  state.timer = setTimeout(runSearch, 250);
}

// Search now, dropping any pending search-as-you-type (a new entry in the history).
export function searchNow() {
  clearTimeout(state.timer);
  state.pushNext = true;
  runSearch();
}

// The address follows the search: replaced while typing, a new entry for an explicit one.
function followAddress() {
  saveAddress(state.pushNext);
  state.pushNext = false;
}

// The filters bar, as tokens of the query language.
function filterTokens() {
  const t = [];
  const quote = (v) => (/[\s"]/.test(v) ? '"' + v.replace(/"/g, "") + '"' : v);
  const path = $("#f-path").value.trim(); if (path) t.push("path:" + quote(path));
  const ext = $("#f-ext").value.trim().replace(/^\./, ""); if (ext) t.push("ext:" + quote(ext));
  if ($("#f-after").value) t.push("after:" + $("#f-after").value);
  if ($("#f-before").value) t.push("before:" + $("#f-before").value);
  const longer = $("#f-longer").value.trim(); if (longer) t.push("longer:" + longer.replace(/\s+/g, ""));
  const shorter = $("#f-shorter").value.trim(); if (shorter) t.push("shorter:" + shorter.replace(/\s+/g, ""));
  if ($("#f-source").value) t.push("source:" + $("#f-source").value);
  for (const tag of state.tags) t.push('tag:"' + tag.replace(/"/g, "") + '"');
  return t;
}

// The text sent: what was typed, then the filters.
function composedQuery() {
  return [$("#q").value.trim()].concat(filterTokens()).filter(Boolean).join(" ");
}

// The chip in the search box saying what besides text is searched by.
export function showPicture() {
  const box = $("#picture");
  const label = $("#picture-label");
  if (state.image) { label.textContent = "picture: " + state.image.name; box.hidden = false; }
  else if (state.frame) { label.textContent = "like frame " + state.frame.id + " of " + basename(state.frame.path); box.hidden = false; }
  else if (state.like) { label.textContent = "like " + plural(state.like.length, "picked moment"); box.hidden = false; }
  else box.hidden = true;
}

export function searchByImage(file) {
  state.image = file; state.frame = null; state.weaker = false;
  showPicture(); searchNow();
}

// "More like this": the segment's frame becomes the query.
export function moreLikeThis(seg) {
  state.frame = { id: seg.frame_id, path: seg.path }; state.image = null; state.like = null; state.weaker = false;
  $("#q").value = "";
  showPicture(); searchNow();
}

// Few-shot: the picked moments' frames train a probe; the typed text (if any) starts it.
export function likeThese() {
  if (!state.picked.size) return;
  state.like = Array.from(state.picked.keys());
  state.image = null; state.frame = null; state.weaker = false;
  state.picked.clear(); showSelection();
  showPicture(); searchNow();
}

// The chip's ×: back to searching by text alone.
export function clearPicture() {
  state.image = null; state.frame = null; state.like = null;
  showPicture(); runSearch();
}

export async function runSearch() {
  const typed = $("#q").value.trim();
  const q = composedQuery();
  const byTags = state.tags.length > 0;
  state.query = typed || byTags ? q : "";
  const seq = ++state.seq;
  if (!typed && !byTags && !state.image && !state.frame && !state.like) {
    state.groups = []; state.withheld = 0; render();
    $("#status").textContent = IDLE;
    followAddress();
    return;
  }
  $("#status").textContent = "Searching…";
  $("#results").dataset.state = "searching";
  try {
    const body = await ask(q);
    if (seq !== state.seq) return; // a newer query is on its way
    showError(null);
    state.groups = body.groups || [];
    state.withheld = body.withheld || 0;
    render();
    followAddress();
  } catch (e) {
    if (seq !== state.seq) return;
    state.groups = []; state.withheld = 0; render();
    $("#status").textContent = "";
    showError(e.message);
  }
}

// The search's parameters (without the grouping); kept in state.params for the
// timeline export, which the server answers by searching again (none for a picture).
function searchParams(q) {
  return "k=40&min_score=" + (state.weaker ? "off" : "auto") + "&q=" + encodeURIComponent(q) +
    (state.frame ? "&frame=" + state.frame.id : "") + (state.like ? "&like=" + state.like.join(",") : "");
}

// The request: a picture is posted, everything else is a GET.
async function ask(q) {
  const params = searchParams(q);
  state.params = state.image ? null : params;
  if (state.image) {
    const fd = new FormData();
    fd.append("image", state.image, state.image.name || "picture");
    return api("/api/search?group=video&" + params, { method: "POST", body: fd });
  }
  return api("/api/search?group=video&" + params);
}
