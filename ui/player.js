// The player: plays a hit from its start, and under it the timeline of the video's
// stored frames, each bar as tall as its similarity to the typed text, the played
// segment outlined and a playhead following the video.

import { api } from "./api.js";
import { $, basename, clock, h } from "./dom.js";
import { state } from "./state.js";

const pct = (x) => x + "%";

export async function play(i) {
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
    const v = $("#player");
    const bar = (f) => {
      const scored = typeof f.score === "number";
      const height = scored && hi > lo ? (f.score - lo) / (hi - lo) : 0.5;
      return h("div", {
        class: "bar",
        style: { left: pct(100 * f.start / dur), width: pct(Math.max(0.3, 100 * (f.end - f.start) / dur)), height: pct(10 + 90 * height) },
        title: clock(f.start) + " score " + (scored ? f.score.toFixed(3) : "?"),
        onclick: () => { v.currentTime = f.start; v.play().catch(() => {}); },
      });
    };
    box.replaceChildren();
    for (const f of d.frames) box.appendChild(bar(f));
    box.appendChild(h("div", { class: "segment", style: { left: pct(100 * seg.start / dur), width: pct(Math.max(0.5, 100 * (seg.end - seg.start) / dur)) } }));
    const head = box.appendChild(h("div", { class: "playhead" }));
    v.ontimeupdate = () => { head.style.left = pct(100 * v.currentTime / dur); };
  } catch (e) {
    box.replaceChildren();
  }
}
