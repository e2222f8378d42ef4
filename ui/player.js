// The player: plays a hit from its start (a hit from on-screen text with its box drawn
// over the picture while the text is shown), and under it the timeline of the video's
// stored frames, each bar as tall as its similarity to the typed text, the played
// segment outlined and a playhead following the video; the clip bar to save the span.

import { api } from "./api.js";
import { $, basename, clock, h } from "./dom.js";
import { clipBar } from "./export.js";
import { saveAddress } from "./links.js";
import { state } from "./state.js";

const pct = (x) => x + "%";

// Plays hit i; the address gets a new history entry with the moment.
export async function play(i) {
  const s = state.hits[i];
  if (!s) return;
  playSegment(s, i);
  saveAddress(true);
}

// Closes the player (an address without a moment).
export function closePlayer() {
  state.playing = null;
  const v = $("#player");
  v.pause();
  $("#player-box").hidden = true;
  document.querySelectorAll(".hit.playing").forEach((el) => el.classList.remove("playing"));
}

// Plays segment s (hit i of the list, or -1 for a moment from a link).
export function playSegment(s, i = -1) {
  state.playing = s;
  const v = $("#player");
  $("#player-box").hidden = false;
  $("#player-title").textContent = basename(s.path) + "  " + clock(s.start) + "–" + clock(s.end);
  $("#player-clip").replaceChildren(clipBar(s, null));
  const src = "/media/" + s.video_id;
  const seek = () => { v.currentTime = s.start; v.play().catch(() => {}); };
  if (v.getAttribute("src") !== src) {
    v.setAttribute("src", src);
    v.addEventListener("loadedmetadata", seek, { once: true });
    v.load();
  } else {
    seek();
  }
  showTextBox(v, s);
  document.querySelectorAll(".hit.playing").forEach((el) => el.classList.remove("playing"));
  const el = document.querySelector('.hit[data-index="' + i + '"]');
  if (el) el.classList.add("playing");
  drawTimeline(s);
}

// For on-screen text: its box over the picture (the video letterboxed in its element)
// while the played time is inside the text's span, with the recognised line.
function showTextBox(v, s) {
  const box = $("#player-ocr");
  const place = () => {
    const seg = state.playing;
    const on = seg && seg.quad && v.videoWidth && v.currentTime >= seg.start - 0.05 && v.currentTime < seg.end;
    box.hidden = !on;
    if (!on) return;
    const scale = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight);
    const [w, ht] = [v.videoWidth * scale, v.videoHeight * scale];
    const [ox, oy] = [v.offsetLeft + (v.clientWidth - w) / 2, v.offsetTop + (v.clientHeight - ht) / 2];
    const xs = seg.quad.map((p) => p[0]), ys = seg.quad.map((p) => p[1]);
    Object.assign(box.style, {
      left: ox + w * Math.min(...xs) + "px", top: oy + ht * Math.min(...ys) + "px",
      width: w * (Math.max(...xs) - Math.min(...xs)) + "px", height: ht * (Math.max(...ys) - Math.min(...ys)) + "px",
    });
    box.title = seg.text || "";
    box.dataset.text = seg.text || "";
  };
  if (!v.dataset.ocrBound) {
    v.dataset.ocrBound = "1";
    for (const ev of ["timeupdate", "seeked", "loadedmetadata", "resize"]) v.addEventListener(ev, place);
  }
  place();
}

async function drawTimeline(seg) {
  const box = $("#timeline");
  try {
    const typed = $("#q").value.trim();
    const d = await api("/api/videos/" + seg.video_id + (typed ? "?q=" + encodeURIComponent(typed) : ""));
    if (state.playing !== seg) return;
    const dur = d.video.duration || Math.max(...d.frames.map((f) => f.end), 1);
    if (d.video.duration) $("#player-clip").replaceChildren(clipBar(seg, d.video.duration));
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
