// vidseek web UI: plain JavaScript modules, no build step (the server embeds and serves
// each file as it is). Talks to the JSON API of the same server (see /api/openapi.json).
//
// This module is the entry: the two tabs, wiring the page's controls to the modules that
// act on them, the keyboard, drag and drop, and the start. The others:
//   dom.js      h() for building elements (no data ever reaches innerHTML), formats
//   api.js      the JSON API client
//   state.js    what the search view shows and was asked
//   search.js   the query (typed text, filters, facets, picture) and sending it
//   results.js  drawing the answer: groups, moment cards, selection, picked moments
//   player.js   the player and the score timeline under it
//   export.js   clips of moments and the result list as OTIO / EDL (links to download)
//   links.js    the address holding the page's state: written, restored, moment links
//   tags.js     tag facets, saving picked moments as a tag, the label editor
//   library.js  the video table, uploads, indexing a path, the model panel
//   eval.js     the evaluation panel
//   progress.js the progress bars under the header
//   events.js   the server's live events (jobs, switches, library changes)
// search.js and results.js import each other (a card's buttons search again); ES
// modules allow it because neither calls the other while loading.

import { $, h } from "./dom.js";
import { runEval } from "./eval.js";
import { listen } from "./events.js";
import { indexPath, loadLibrary, loadModel, switchModel, upload } from "./library.js";
import { restoreAddress } from "./links.js";
import { closePlayer, play, playSegment } from "./player.js";
import { select, showSelection } from "./results.js";
import { clearPicture, likeThese, runSearch, scheduleSearch, searchByImage, searchNow, showPicture } from "./search.js";
import { state } from "./state.js";
import { loadFacets, loadLabels, saveAsTag, saveLabels } from "./tags.js";

function showTab(name) {
  $("#search-view").hidden = name !== "search";
  $("#library-view").hidden = name !== "library";
  $("#tab-search").classList.toggle("active", name === "search");
  $("#tab-library").classList.toggle("active", name === "library");
  if (name === "library") { loadLibrary(); loadModel(); loadLabels(); }
  if (name === "search") loadFacets();
}

// A picture to search by switches to the search tab first.
function searchByPicture(file) {
  showTab("search"); searchByImage(file);
}

// The search box, the filters bar, the picture chip and the selection bar.
function wireSearch() {
  $("#q").addEventListener("input", () => { state.weaker = false; if (state.frame) { state.frame = null; showPicture(); } scheduleSearch(); });
  $("#filters").addEventListener("input", () => { state.weaker = false; scheduleSearch(); });
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); searchNow(); });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); searchNow(); });
  $("#picture-clear").addEventListener("click", clearPicture);
  $("#image-input").addEventListener("change", (e) => { if (e.target.files.length) searchByPicture(e.target.files[0]); e.target.value = ""; });
  $("#like-these").addEventListener("click", likeThese);
  $("#save-tag").addEventListener("click", saveAsTag);
  $("#clear-selection").addEventListener("click", () => { state.picked.clear(); showSelection(); });
}

// The tabs and the library view's forms and panels.
function wireLibrary() {
  $("#tab-search").addEventListener("click", () => showTab("search"));
  $("#tab-library").addEventListener("click", () => showTab("library"));
  $("#labels-save").addEventListener("click", () => saveLabels(false));
  $("#labels-reset").addEventListener("click", () => saveLabels(true));
  $("#eval-input").addEventListener("change", (e) => { if (e.target.files.length) runEval(e.target.files[0]); e.target.value = ""; });
  $("#file-input").addEventListener("change", (e) => upload(e.target.files));
  $("#index-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const path = $("#index-path").value.trim();
    if (path) indexPath(path);
  });
  $("#switch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const dir = $("#switch-dir").value.trim();
    if (dir) switchModel(dir);
  });
}

// A picture dropped on the search box (or anywhere while searching) is searched by;
// videos dropped anywhere are uploaded.
function wireDrop() {
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  document.addEventListener("drop", (e) => {
    const files = e.dataTransfer ? Array.from(e.dataTransfer.files) : [];
    if (!files.length) return;
    const onSearch = $("#search-form").contains(e.target) || !$("#search-view").hidden;
    if (onSearch && files.length === 1 && files[0].type.startsWith("image/")) { searchByPicture(files[0]); return; }
    showTab("library"); upload(files);
  });
}

// "/" goes to the search box; arrows move between hits, Enter plays the selected one.
function wireKeys() {
  document.addEventListener("keydown", (e) => {
    const typing = e.target === $("#q") || e.target.tagName === "INPUT";
    if (e.key === "/" && !typing) { e.preventDefault(); showTab("search"); $("#q").focus(); $("#q").select(); return; }
    if ($("#search-view").hidden || !state.hits.length) return;
    if (e.key === "ArrowDown" || (e.key === "ArrowRight" && !typing)) { e.preventDefault(); select(state.selected + 1); }
    else if (e.key === "ArrowUp" || (e.key === "ArrowLeft" && !typing)) { e.preventDefault(); select(state.selected - 1); }
    else if (e.key === "Enter" && state.selected >= 0) { e.preventDefault(); play(state.selected); }
  });
}

// A module runs once the document is parsed, so the page is there to wire.
wireSearch();
loadFacets();
wireLibrary();
wireDrop();
wireKeys();
listen();
loadLibrary().then(() => {
  if (!$("#videos tbody").children.length) {
    $("#status").replaceChildren(h("span", { class: "empty" }, "Library empty: add a folder (see the Library tab)."));
  }
});
// The address's search and moment, now and on back/forward.
const openMoment = async (s) => { if (s) playSegment(s); else closePlayer(); };
const search = async () => { showPicture(); await runSearch(); };
restoreAddress(search, openMoment);
window.addEventListener("popstate", () => restoreAddress(search, openMoment));
