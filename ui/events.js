// The server's live events (/api/events): indexing jobs and model switches as progress
// bars, and what they change (the library table, the facets, the results) reloaded.

import { basename, showError } from "./dom.js";
import { loadLibrary, loadModel } from "./library.js";
import { jobBar, setBar } from "./progress.js";
import { runSearch } from "./search.js";
import { state } from "./state.js";
import { loadFacets } from "./tags.js";

// Each indexing job's running totals, by job id, until its bar goes.
const jobs = new Map();

export function listen() {
  const es = new EventSource("/api/events");
  es.addEventListener("job", (e) => { try { onJobEvent(JSON.parse(e.data)); } catch (_) { /* ignore */ } });
  es.addEventListener("library", () => { loadLibrary(); if (state.query) runSearch(); });
  es.onerror = () => { /* the browser reconnects by itself */ };
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
