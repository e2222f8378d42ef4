// vidseek web UI: plain JavaScript, no build step. Talks to the JSON API of the same
// server (see /api/openapi.json).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  query: "", groups: [], hits: [], selected: -1, playing: null, videoId: null, timer: null, seq: 0,
  image: null, frame: null, weaker: false, withheld: 0,
  tags: [], picked: new Map(), like: null,
};

function clock(t) {
  t = Math.max(0, t || 0);
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return String(m).padStart(2, "0") + ":" + s.toFixed(1).padStart(4, "0");
}

function basename(p) { return (p || "").split("/").pop(); }

function showError(msg) {
  const el = $("#error");
  if (!msg) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = msg;
  el.hidden = false;
}

async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  if (res.status === 401) { location.href = "/login"; throw new Error("log in first"); }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || ("HTTP " + res.status));
  return body;
}

// ---------------------------------------------------------------- search

function scheduleSearch() {
  clearTimeout(state.timer);
  state.timer = setTimeout(runSearch, 250);
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

function showPicture() {
  const box = $("#picture");
  if (state.image) { $("#picture-label").textContent = "picture: " + state.image.name; box.hidden = false; }
  else if (state.frame) { $("#picture-label").textContent = "like frame " + state.frame.id + " of " + basename(state.frame.path); box.hidden = false; }
  else if (state.like) { $("#picture-label").textContent = "like " + state.like.length + " picked moment" + (state.like.length === 1 ? "" : "s"); box.hidden = false; }
  else box.hidden = true;
}

function searchByImage(file) {
  state.image = file; state.frame = null; state.weaker = false;
  showTab("search"); showPicture(); clearTimeout(state.timer); runSearch();
}

function moreLikeThis(seg) {
  state.frame = { id: seg.frame_id, path: seg.path }; state.image = null; state.like = null; state.weaker = false;
  $("#q").value = "";
  showPicture(); clearTimeout(state.timer); runSearch();
}

// Few-shot: the picked moments' frames train a probe; the typed text (if any) starts it.
function likeThese() {
  if (!state.picked.size) return;
  state.like = Array.from(state.picked.keys());
  state.image = null; state.frame = null; state.weaker = false;
  state.picked.clear(); showSelection();
  showPicture(); clearTimeout(state.timer); runSearch();
}

async function saveAsTag() {
  if (!state.picked.size) return;
  const name = (prompt("Name the tag for moments like these:") || "").trim();
  if (!name) return;
  try {
    await api("/api/probes", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, q: $("#q").value.trim(), like: Array.from(state.picked.keys()) }) });
    state.picked.clear(); showSelection(); showError(null); loadFacets();
  } catch (e) { showError(e.message); }
}

function showSelection() {
  const n = state.picked.size;
  $("#selection").hidden = n === 0;
  $("#selection-count").textContent = n + " moment" + (n === 1 ? "" : "s") + " picked";
  document.querySelectorAll(".card").forEach((c) => {
    const on = state.picked.has(Number(c.dataset.frame));
    c.classList.toggle("picked", on);
    const box = c.querySelector(".pick-hit input");
    if (box) box.checked = on;
  });
}

// The tags in use, as a facet list: clicking one shows only its moments.
async function loadFacets() {
  try {
    const d = await api("/api/tags");
    const box = $("#facets");
    box.innerHTML = "";
    box.hidden = d.tags.length === 0;
    for (const t of d.tags.slice(0, 60)) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "facet" + (state.tags.includes(t.label) ? " on" : "");
      b.dataset.label = t.label;
      b.innerHTML = escapeHtml(t.label) + '<span class="n">' + t.moments + "</span>";
      b.title = t.moments + " moments in " + t.videos + " videos";
      b.addEventListener("click", () => toggleTag(t.label));
      box.appendChild(b);
    }
  } catch (e) { /* tags are optional */ }
}

function toggleTag(label) {
  const i = state.tags.indexOf(label);
  if (i >= 0) state.tags.splice(i, 1); else state.tags.push(label);
  document.querySelectorAll(".facet").forEach((f) => f.classList.toggle("on", state.tags.includes(f.dataset.label)));
  state.weaker = false; clearTimeout(state.timer); runSearch();
}

async function runSearch() {
  const typed = $("#q").value.trim();
  const q = composedQuery();
  const byTags = state.tags.length > 0;
  state.query = typed || byTags ? q : "";
  const seq = ++state.seq;
  if (!typed && !byTags && !state.image && !state.frame && !state.like) {
    state.groups = []; state.withheld = 0; render();
    $("#status").textContent = "Type to search. Results update as you type.";
    return;
  }
  $("#status").textContent = "Searching…";
  $("#results").dataset.state = "searching";
  const cut = state.weaker ? "off" : "auto";
  try {
    let body;
    if (state.image) {
      const fd = new FormData();
      fd.append("image", state.image, state.image.name || "picture");
      body = await api("/api/search?group=video&k=40&min_score=" + cut + "&q=" + encodeURIComponent(q), { method: "POST", body: fd });
    } else {
      let url = "/api/search?group=video&k=40&min_score=" + cut + "&q=" + encodeURIComponent(q);
      if (state.frame) url += "&frame=" + state.frame.id;
      if (state.like) url += "&like=" + state.like.join(",");
      body = await api(url);
    }
    if (seq !== state.seq) return; // a newer query is on its way
    showError(null);
    state.groups = body.groups || [];
    state.withheld = body.withheld || 0;
    render();
  } catch (e) {
    if (seq !== state.seq) return;
    state.groups = []; state.withheld = 0; render();
    $("#status").textContent = "";
    showError(e.message);
  }
}

function render() {
  const list = $("#results");
  list.innerHTML = "";
  // What the list shows, for anyone (a test, an extension) waiting on it.
  list.dataset.state = "done";
  list.dataset.query = state.query;
  list.dataset.picture = state.image ? "image:" + state.image.name : state.frame ? "frame:" + state.frame.id : state.like ? "like:" + state.like.join(",") : "";
  state.hits = [];
  const asked = state.query || state.image || state.frame || state.like;
  if (asked && state.groups.length === 0) {
    const what = state.query ? "“" + escapeHtml(state.query) + "”" : "this picture";
    const st = $("#status");
    if (state.withheld > 0 && !state.weaker) {
      st.innerHTML = '<span class="empty" id="no-match">No good match for ' + what + ".</span> " +
        '<button type="button" id="show-weaker">Show weaker matches (' + state.withheld + ")</button>";
      $("#show-weaker").addEventListener("click", () => { state.weaker = true; runSearch(); });
    } else {
      st.innerHTML = '<span class="empty" id="no-match">No matches for ' + what + ".</span>";
    }
    return;
  }
  if (state.groups.length) {
    const n = state.groups.reduce((a, g) => a + g.segments.length, 0);
    $("#status").textContent = n + " moment" + (n === 1 ? "" : "s") + " in " + state.groups.length + " video" + (state.groups.length === 1 ? "" : "s") +
      (state.weaker ? " (weaker matches shown)" : state.withheld ? " (" + state.withheld + " weaker held back)" : "") + " — ↑↓ to move, Enter to play";
  }
  for (const g of state.groups) {
    const li = document.createElement("li");
    li.className = "group";
    li.innerHTML = '<div class="group-head"><span class="name" title="' + escapeHtml(g.path) + '">' + escapeHtml(basename(g.path)) +
      '</span><span class="score">best ' + g.best_score.toFixed(3) + "</span></div>";
    const strip = document.createElement("div");
    strip.className = "strip";
    for (const s of g.segments) {
      const idx = state.hits.length;
      state.hits.push(s);
      const card = document.createElement("button");
      card.type = "button";
      card.className = "hit";
      card.dataset.index = idx;
      card.dataset.start = s.start;
      card.dataset.end = s.end;
      card.innerHTML = (s.thumbnail ? '<img loading="lazy" alt="" src="' + s.thumbnail + '">' : '<div class="noimg">text</div>') +
        '<span class="range">' + clock(s.start) + "–" + clock(s.end) + "</span>" +
        '<span class="meta"><span class="src ' + s.source + '">' + s.source + "</span> " + s.score.toFixed(3) + "</span>" +
        (s.text ? '<span class="cue">' + escapeHtml(s.text) + "</span>" : "") +
        (s.tags && s.tags.length ? '<span class="tags">' + s.tags.slice(0, 4).map((t) => '<span class="chip">' + escapeHtml(t) + "</span>").join("") + "</span>" : "");
      card.addEventListener("click", () => { select(idx); play(idx); });
      const wrap = document.createElement("div");
      wrap.className = "card";
      wrap.appendChild(card);
      if (s.frame_id != null) {
        wrap.dataset.frame = s.frame_id;
        const pick = document.createElement("label");
        pick.className = "pick-hit";
        pick.innerHTML = '<input type="checkbox"> pick';
        pick.title = "Pick moments, then 'More like these'";
        pick.querySelector("input").addEventListener("change", (e) => {
          if (e.target.checked) state.picked.set(s.frame_id, s); else state.picked.delete(s.frame_id);
          showSelection();
        });
        wrap.appendChild(pick);
        const more = document.createElement("button");
        more.type = "button";
        more.className = "more";
        more.textContent = "more like this";
        more.title = "Search for moments that look like this frame";
        more.addEventListener("click", () => moreLikeThis(s));
        wrap.appendChild(more);
      }
      strip.appendChild(wrap);
    }
    li.appendChild(strip);
    list.appendChild(li);
  }
  if (state.hits.length) select(0, false);
  showSelection();
}

function select(i, scroll = true) {
  if (!state.hits.length) return;
  state.selected = Math.max(0, Math.min(state.hits.length - 1, i));
  document.querySelectorAll(".hit.selected").forEach((el) => el.classList.remove("selected"));
  const el = document.querySelector('.hit[data-index="' + state.selected + '"]');
  if (el) { el.classList.add("selected"); if (scroll) el.scrollIntoView({ block: "nearest", inline: "nearest" }); }
}

async function play(i) {
  const s = state.hits[i];
  if (!s) return;
  state.playing = s;
  const v = $("#player");
  $("#player-box").hidden = false;
  $("#player-title").textContent = basename(s.path) + "  " + clock(s.start) + "–" + clock(s.end);
  const src = "/media/" + s.video_id;
  const seek = () => { v.currentTime = s.start; v.play().catch(() => {}); };
  if (v.getAttribute("src") !== src) {
    v.setAttribute("src", src);
    v.addEventListener("loadedmetadata", seek, { once: true });
    v.load();
  } else {
    seek();
  }
  document.querySelectorAll(".hit.playing").forEach((el) => el.classList.remove("playing"));
  const el = document.querySelector('.hit[data-index="' + i + '"]');
  if (el) el.classList.add("playing");
  drawTimeline(s);
}

async function drawTimeline(seg) {
  const box = $("#timeline");
  try {
    const typed = $("#q").value.trim();
    const d = await api("/api/videos/" + seg.video_id + (typed ? "?q=" + encodeURIComponent(typed) : ""));
    if (state.playing !== seg) return;
    const dur = d.video.duration || Math.max(...d.frames.map((f) => f.end), 1);
    const scores = d.frames.map((f) => f.score).filter((x) => typeof x === "number");
    const lo = Math.min(...scores), hi = Math.max(...scores);
    box.innerHTML = "";
    for (const f of d.frames) {
      const bar = document.createElement("div");
      bar.className = "bar";
      const h = typeof f.score === "number" && hi > lo ? (f.score - lo) / (hi - lo) : 0.5;
      bar.style.left = (100 * f.start / dur) + "%";
      bar.style.width = Math.max(0.3, 100 * (f.end - f.start) / dur) + "%";
      bar.style.height = (10 + 90 * h) + "%";
      bar.title = clock(f.start) + " score " + (typeof f.score === "number" ? f.score.toFixed(3) : "?");
      bar.addEventListener("click", () => { const v = $("#player"); v.currentTime = f.start; v.play().catch(() => {}); });
      box.appendChild(bar);
    }
    const mark = document.createElement("div");
    mark.className = "segment";
    mark.style.left = (100 * seg.start / dur) + "%";
    mark.style.width = Math.max(0.5, 100 * (seg.end - seg.start) / dur) + "%";
    box.appendChild(mark);
    const head = document.createElement("div");
    head.className = "playhead";
    box.appendChild(head);
    const v = $("#player");
    v.ontimeupdate = () => { head.style.left = (100 * v.currentTime / dur) + "%"; };
  } catch (e) {
    box.innerHTML = "";
  }
}

// ---------------------------------------------------------------- library

async function loadLibrary() {
  try {
    const d = await api("/api/videos");
    const tbody = $("#videos tbody");
    tbody.innerHTML = "";
    $("#lib-count").textContent = d.videos.length ? "(" + d.videos.length + ")" : "";
    $("#library-empty").hidden = d.videos.length > 0;
    $("#videos").hidden = d.videos.length === 0;
    for (const v of d.videos) {
      const tr = document.createElement("tr");
      tr.className = v.status;
      tr.innerHTML = '<td title="' + escapeHtml(v.path) + '">' + escapeHtml(basename(v.path)) +
        (v.error ? '<div class="err">' + escapeHtml(v.error) + "</div>" : "") + "</td>" +
        "<td>" + v.status + "</td><td>" + (v.duration ? clock(v.duration) : "–") + "</td><td>" + v.frame_count + "</td>" +
        '<td><button type="button" class="remove" title="Remove from the library (the file stays)">remove</button></td>';
      tr.querySelector(".remove").addEventListener("click", async () => {
        try { await api("/api/videos/" + v.id, { method: "DELETE" }); loadLibrary(); } catch (e) { showError(e.message); }
      });
      tbody.appendChild(tr);
    }
  } catch (e) { showError(e.message); }
}

function upload(files) {
  for (const f of files) {
    const bar = jobBar("upload-" + f.name + Math.random(), "Uploading " + f.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/upload");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setBar(bar, e.loaded / e.total, Math.round(100 * e.loaded / e.total) + "%"); };
    xhr.onload = () => {
      bar.remove();
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 401) { location.href = "/login"; return; }
      if (xhr.status >= 400) showError(f.name + ": " + (body.message || "upload failed (HTTP " + xhr.status + ")"));
      else showError(null);
    };
    xhr.onerror = () => { bar.remove(); showError(f.name + ": upload failed"); };
    const fd = new FormData();
    fd.append("file", f, f.name);
    xhr.send(fd);
  }
}

// ---------------------------------------------------------------- eval

async function runEval(file) {
  const out = $("#eval-report");
  out.textContent = "Evaluating " + file.name + "…";
  try {
    const truth = JSON.parse(await file.text());
    const r = await api("/api/eval", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(truth) });
    const pct = (x) => (100 * x).toFixed(1) + "%";
    let html = '<table class="eval"><tr><th>queries</th><th>moments</th><th>R@1</th><th>R@5</th><th>R@10</th><th>mAP</th><th>median peak error</th></tr><tr>' +
      "<td>" + r.queries + "</td><td>" + r.moments + '</td><td id="eval-r1">' + pct(r.recall_at_1) + "</td><td>" + pct(r.recall_at_5) + "</td><td>" +
      pct(r.recall_at_10) + '</td><td id="eval-map">' + r.map.toFixed(3) + "</td><td>" + (r.median_peak_error == null ? "–" : r.median_peak_error.toFixed(2) + " s") + "</td></tr></table>";
    if (r.misses.length) {
      html += "<h4>Misses</h4><ul class=\"misses\">" + r.misses.map((m) => "<li>“" + escapeHtml(m.query) + "” " + escapeHtml(basename(m.path)) + " " +
        clock(m.start) + "–" + clock(m.end) + ": " + (m.rank ? "rank " + m.rank : "not in the first 10") +
        (m.first ? "; first came " + escapeHtml(basename(m.first.path)) + " " + clock(m.first.start) + "–" + clock(m.first.end) + (m.first_is_truth ? " (also in the truth)" : "") : "") + "</li>").join("") + "</ul>";
    }
    out.innerHTML = html;
    showError(null);
  } catch (e) {
    out.textContent = "";
    showError(file.name + ": " + e.message);
  }
}

// ---------------------------------------------------------------- labels

async function loadLabels() {
  try {
    const d = await api("/api/labels");
    $("#labels-text").value = d.labels.join("\n");
    $("#labels-default").textContent = d.default ? "Now: the default vocabulary (" + d.labels.length + " labels)." : "Now: this library's own " + d.labels.length + " labels.";
  } catch (e) { showError(e.message); }
}

async function saveLabels(reset) {
  const st = $("#labels-status");
  st.textContent = "Tagging…";
  try {
    const labels = $("#labels-text").value.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const d = reset ? await api("/api/labels", { method: "DELETE" })
      : await api("/api/labels", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ labels }) });
    st.textContent = "Saved: " + d.labels.length + " labels; every moment is tagged again.";
    showError(null); loadLabels(); state.tags = []; loadFacets();
  } catch (e) { st.textContent = ""; showError(e.message); }
}

// ---------------------------------------------------------------- model

async function loadModel() {
  try {
    const m = await api("/api/model");
    const a = m.active;
    $("#model-name").textContent = a.name;
    $("#model-facts").textContent = "(" + [a.dim + "-d", a.image_size + " px", a.layout, a.variant, a.provider].filter(Boolean).join(", ") + ")";
    const st = $("#switch-status");
    if (m.switch) {
      const s = m.switch;
      st.hidden = false;
      st.textContent = "Switching to " + s.model + ": " + s.frames_done + "/" + s.frames_total + " frames re-embedded" +
        (s.eta_seconds != null ? ", about " + Math.round(s.eta_seconds) + " s left" : "") + ". Search uses " + a.name + " until it is done.";
    } else {
      st.hidden = true;
    }
  } catch (e) { showError(e.message); }
}

function onSwitchEvent(p) {
  const bar = jobBar(p.job_id, "Switching to " + p.model);
  if (p.event === "switch") {
    setBar(bar, p.frames_total ? p.frames_done / p.frames_total : 0, p.frames_done + "/" + p.frames_total + " frames" +
      (p.eta_seconds != null ? " · about " + Math.round(p.eta_seconds) + " s left" : ""));
  } else {
    setBar(bar, 1, "now searching with " + p.model);
    bar.classList.add("succeeded");
    setTimeout(() => bar.remove(), 4000);
    if (state.query) runSearch();
  }
  loadModel();
}

// ---------------------------------------------------------------- jobs (live)

const jobs = new Map();

function jobBar(key, label) {
  let el = document.getElementById("job-" + key);
  if (!el) {
    el = document.createElement("div");
    el.className = "job";
    el.id = "job-" + key;
    el.innerHTML = '<span class="label"></span><div class="track"><div class="fill"></div></div><span class="pct"></span>';
    $("#jobs").appendChild(el);
  }
  el.querySelector(".label").textContent = label;
  return el;
}

function setBar(el, frac, text) {
  el.querySelector(".fill").style.width = Math.round(100 * Math.max(0, Math.min(1, frac))) + "%";
  el.querySelector(".pct").textContent = text;
}

function onJobEvent(p) {
  if (p.event === "switch" || p.event === "switched") return onSwitchEvent(p);
  const id = p.job_id;
  const j = jobs.get(id) || { total: 0, done: 0, frames: 0, files: 0, filesDone: 0, t0: Date.now() };
  jobs.set(id, j);
  const bar = jobBar(id, "Indexing (job " + id + ")");
  if (p.event === "planned") { j.total = p.video_seconds; j.files = p.to_index; }
  if (p.event === "frames") { j.done = p.video_seconds; j.frames = p.frames; }
  if (p.event === "file_done") {
    j.filesDone += 1;
    if (p.report.state === "failed") showError(basename(p.report.path) + ": " + p.report.error);
  }
  const rate = j.frames / Math.max(0.001, (Date.now() - j.t0) / 1000);
  setBar(bar, j.total ? j.done / j.total : 0, j.filesDone + "/" + j.files + " files · " + j.frames + " frames · " + rate.toFixed(1) + " fps");
  if (p.event === "finished") {
    setBar(bar, 1, p.state + ": " + p.indexed + " indexed, " + p.unchanged + " unchanged, " + p.failed + " failed");
    bar.classList.add(p.state);
    setTimeout(() => { bar.remove(); jobs.delete(id); }, 4000);
    loadLibrary(); loadFacets();
    if (state.query) runSearch();
  }
}

function listen() {
  const es = new EventSource("/api/events");
  es.addEventListener("job", (e) => { try { onJobEvent(JSON.parse(e.data)); } catch (_) { /* ignore */ } });
  es.addEventListener("library", () => { loadLibrary(); if (state.query) runSearch(); });
  es.onerror = () => { /* the browser reconnects by itself */ };
}

// ---------------------------------------------------------------- wiring

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function showTab(name) {
  $("#search-view").hidden = name !== "search";
  $("#library-view").hidden = name !== "library";
  $("#tab-search").classList.toggle("active", name === "search");
  $("#tab-library").classList.toggle("active", name === "library");
  if (name === "library") { loadLibrary(); loadModel(); loadLabels(); }
  if (name === "search") loadFacets();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#q").addEventListener("input", () => { state.weaker = false; if (state.frame) { state.frame = null; showPicture(); } scheduleSearch(); });
  loadFacets();
  $("#filters").addEventListener("input", () => { state.weaker = false; scheduleSearch(); });
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(state.timer); runSearch(); });
  $("#picture-clear").addEventListener("click", () => { state.image = null; state.frame = null; state.like = null; showPicture(); runSearch(); });
  $("#like-these").addEventListener("click", likeThese);
  $("#save-tag").addEventListener("click", saveAsTag);
  $("#clear-selection").addEventListener("click", () => { state.picked.clear(); showSelection(); });
  $("#labels-save").addEventListener("click", () => saveLabels(false));
  $("#labels-reset").addEventListener("click", () => saveLabels(true));
  $("#image-input").addEventListener("change", (e) => { if (e.target.files.length) searchByImage(e.target.files[0]); e.target.value = ""; });
  $("#eval-input").addEventListener("change", (e) => { if (e.target.files.length) runEval(e.target.files[0]); e.target.value = ""; });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(state.timer); runSearch(); });
  $("#tab-search").addEventListener("click", () => showTab("search"));
  $("#tab-library").addEventListener("click", () => showTab("library"));
  $("#file-input").addEventListener("change", (e) => upload(e.target.files));
  $("#index-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const path = $("#index-path").value.trim();
    if (!path) return;
    try { await api("/api/index", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path }) }); showError(null); $("#index-path").value = ""; }
    catch (err) { showError(err.message); }
  });
  $("#switch-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const dir = $("#switch-dir").value.trim();
    if (!dir) return;
    try { await api("/api/model", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ dir }) }); showError(null); $("#switch-dir").value = ""; loadModel(); }
    catch (err) { showError(err.message); }
  });
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => document.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  // A picture dropped on the search box (or anywhere while searching) is searched by;
  // videos dropped anywhere are uploaded.
  document.addEventListener("drop", (e) => {
    const files = e.dataTransfer ? Array.from(e.dataTransfer.files) : [];
    if (!files.length) return;
    const onSearch = $("#search-form").contains(e.target) || !$("#search-view").hidden;
    if (onSearch && files.length === 1 && files[0].type.startsWith("image/")) { searchByImage(files[0]); return; }
    showTab("library"); upload(files);
  });

  document.addEventListener("keydown", (e) => {
    const typing = e.target === $("#q") || e.target.tagName === "INPUT";
    if (e.key === "/" && !typing) { e.preventDefault(); showTab("search"); $("#q").focus(); $("#q").select(); return; }
    if ($("#search-view").hidden || !state.hits.length) return;
    if (e.key === "ArrowDown" || (e.key === "ArrowRight" && !typing)) { e.preventDefault(); select(state.selected + 1); }
    else if (e.key === "ArrowUp" || (e.key === "ArrowLeft" && !typing)) { e.preventDefault(); select(state.selected - 1); }
    else if (e.key === "Enter" && state.selected >= 0) { e.preventDefault(); play(state.selected); }
  });

  listen();
  loadLibrary().then(() => {
    if (!$("#videos tbody").children.length) {
      $("#status").innerHTML = '<span class="empty">Library empty: add a folder (see the Library tab).</span>';
    }
  });
  const q = new URLSearchParams(location.search).get("q");
  if (q) { $("#q").value = q; runSearch(); }
});
