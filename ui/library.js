// The library view: the table of videos (with remove), uploads and indexing a path, and
// the model panel (the active model, a switch under way, switching). The evaluation
// panel is eval.js's, the label editor tags.js's.

import { api, sendJson } from "./api.js";
import { $, basename, clock, h, showError } from "./dom.js";
import { jobBar, setBar } from "./progress.js";

export async function loadLibrary() {
  try {
    const d = await api("/api/videos");
    const tbody = $("#videos tbody");
    tbody.replaceChildren();
    $("#lib-count").textContent = d.videos.length ? "(" + d.videos.length + ")" : "";
    $("#library-empty").hidden = d.videos.length > 0;
    $("#videos").hidden = d.videos.length === 0;
    for (const v of d.videos) tbody.appendChild(videoRow(v));
  } catch (e) { showError(e.message); }
}

function videoRow(v) {
  const remove = async () => {
    try { await api("/api/videos/" + v.id, { method: "DELETE" }); loadLibrary(); } catch (e) { showError(e.message); }
  };
  return h("tr", { class: v.status },
    h("td", { title: v.path }, basename(v.path), v.error ? h("div", { class: "err" }, v.error) : null),
    h("td", null, v.status),
    h("td", null, v.duration ? clock(v.duration) : "–"),
    h("td", null, v.frame_count),
    h("td", null, h("button", { type: "button", class: "remove", title: "Remove from the library (the file stays)", onclick: remove }, "remove")));
}

// Uploads each file with a progress bar; the server indexes it (its job reports itself).
export function upload(files) {
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

// The index form: a folder or file inside the library is indexed (as a job).
export async function indexPath(path) {
  try { await sendJson("POST", "/api/index", { path }); showError(null); $("#index-path").value = ""; }
  catch (err) { showError(err.message); }
}

export async function loadModel() {
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

// The switch form: starts re-embedding the library with the package in `dir`.
export async function switchModel(dir) {
  try { await sendJson("POST", "/api/model", { dir }); showError(null); $("#switch-dir").value = ""; loadModel(); }
  catch (err) { showError(err.message); }
}
