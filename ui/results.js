// Drawing the search's answer: the status line, one group a video with a strip of
// moment cards (thumbnail with the box of on-screen text, time range, score, subtitle or
// on-screen text, tag chips, "pick", "more like this", "save clip" and "copy link"), the no-match state, the keyboard's selection and the picked moments'
// bar. Reads the shared state; what a card's buttons ask goes back to search.js.

import { $, basename, clock, h, plural } from "./dom.js";
import { saveClipLink, timelineLinks } from "./export.js";
import { momentLink } from "./links.js";
import { play } from "./player.js";
import { moreLikeThis, runSearch } from "./search.js";
import { state } from "./state.js";

export function render() {
  const list = $("#results");
  list.replaceChildren();
  // What the list shows, for anyone (a test, an extension) waiting on it.
  list.dataset.state = "done";
  list.dataset.query = state.query;
  list.dataset.picture = state.image ? "image:" + state.image.name : state.frame ? "frame:" + state.frame.id : state.like ? "like:" + state.like.join(",") : "";
  state.hits = [];
  const asked = state.query || state.image || state.frame || state.like;
  if (asked && state.groups.length === 0) { renderNoMatch(); return; }
  if (state.groups.length) {
    const n = state.groups.reduce((a, g) => a + g.segments.length, 0);
    $("#status").textContent = plural(n, "moment") + " in " + plural(state.groups.length, "video") +
      (state.weaker ? " (weaker matches shown)" : state.withheld ? " (" + state.withheld + " weaker held back)" : "") + " — ↑↓ to move, Enter to play.";
    if (state.params) $("#status").append(timelineLinks(state.params));
  }
  for (const g of state.groups) list.append(groupItem(g));
  if (state.hits.length) select(0, false);
  showSelection();
}

// Nothing to show: with matches held back by the cut-off, a button to see them anyway.
function renderNoMatch() {
  const what = state.query ? "“" + state.query + "”" : "this picture";
  if (state.withheld > 0 && !state.weaker) {
    $("#status").replaceChildren(
      h("span", { class: "empty", id: "no-match" }, "No good match for ", what, "."), " ",
      h("button", { type: "button", id: "show-weaker", onclick: () => { state.weaker = true; runSearch(); } },
        "Show weaker matches (" + state.withheld + ")"));
  } else {
    $("#status").replaceChildren(h("span", { class: "empty", id: "no-match" }, "No matches for ", what, "."));
  }
}

// One video: its name and best score over a strip of its moments. Registers each moment
// in state.hits, whose index the card carries.
function groupItem(g) {
  const strip = h("div", { class: "strip" });
  for (const s of g.segments) {
    const idx = state.hits.length;
    state.hits.push(s);
    strip.append(card(s, idx));
  }
  return h("li", { class: "group" },
    h("div", { class: "group-head" },
      h("span", { class: "name", title: g.path }, basename(g.path)),
      h("span", { class: "score" }, "best " + g.best_score.toFixed(3))),
    strip);
}

// The moment's thumbnail; for on-screen text, with the box where the words are drawn
// over it (placed once the picture's own aspect is known: the card crops to 16:9).
function picture(s) {
  if (!s.thumbnail) return h("div", { class: "noimg" }, "text");
  if (!s.quad) return h("img", { loading: "lazy", alt: "", src: s.thumbnail });
  const box = h("span", { class: "ocrbox", title: s.text || "" });
  const img = h("img", { loading: "lazy", alt: "", src: s.thumbnail, onload: () => placeOnCover(box, s.quad, img) });
  return h("span", { class: "shot" }, img, box);
}

// Places `box` over the part `quad` (fractions of the frame) of a picture shown with
// object-fit: cover in a 16:9 frame.
function placeOnCover(box, quad, img) {
  const a = img.naturalWidth / img.naturalHeight, c = 16 / 9;
  let [x0, y0, w, ht] = [0, 0, 1, 1];
  if (a > c) { w = c / a; x0 = (1 - w) / 2; } else { ht = a / c; y0 = (1 - ht) / 2; }
  const xs = quad.map((p) => p[0]), ys = quad.map((p) => p[1]);
  const l = (Math.min(...xs) - x0) / w, r = (Math.max(...xs) - x0) / w;
  const t = (Math.min(...ys) - y0) / ht, b = (Math.max(...ys) - y0) / ht;
  Object.assign(box.style, { left: 100 * l + "%", top: 100 * t + "%", width: 100 * (r - l) + "%", height: 100 * (b - t) + "%" });
  box.classList.add("placed");
}

// A moment: the button that plays it and, for a moment with a stored frame, "pick" and
// "more like this".
function card(s, idx) {
  const hit = h("button", {
    type: "button", class: "hit", dataset: { index: idx, start: s.start, end: s.end },
    onclick: () => { select(idx); play(idx); },
  },
  picture(s),
  h("span", { class: "range" }, clock(s.start) + "–" + clock(s.end)),
  h("span", { class: "meta" }, h("span", { class: "src " + s.source }, s.source), " " + s.score.toFixed(3)),
  s.text ? h("span", { class: "cue" }, s.text) : null,
  s.tags && s.tags.length ? h("span", { class: "tags" }, s.tags.slice(0, 4).map((t) => h("span", { class: "chip" }, t))) : null);
  if (s.frame_id == null) return h("div", { class: "card" }, hit, saveClipLink(s), linkTo(s));
  const onPick = (e) => {
    if (e.target.checked) state.picked.set(s.frame_id, s); else state.picked.delete(s.frame_id);
    showSelection();
  };
  return h("div", { class: "card", dataset: { frame: s.frame_id } }, hit,
    h("label", { class: "pick-hit", title: "Pick moments, then 'More like these'" },
      h("input", { type: "checkbox", onchange: onPick }), " pick"),
    h("button", { type: "button", class: "more", title: "Search for moments that look like this frame", onclick: () => moreLikeThis(s) },
      "more like this"),
    saveClipLink(s), linkTo(s));
}

// "copy link": the address of this page with the moment playing, copied on a click (a
// plain link too: open it in a new tab, or copy it from the browser's menu).
function linkTo(s) {
  const href = momentLink(s);
  const a = h("a", { class: "moment-link", href, title: "Copy a link to this moment (opens the player at it)" }, "copy link");
  a.addEventListener("click", (e) => {
    e.preventDefault();
    const done = () => { a.textContent = "link copied"; setTimeout(() => { a.textContent = "copy link"; }, 1500); };
    if (navigator.clipboard) navigator.clipboard.writeText(href).then(done, () => prompt("Copy this link:", href));
    else prompt("Copy this link:", href);
  });
  return a;
}

// Moves the keyboard's selection to hit i (clamped), scrolling it into view.
export function select(i, scroll = true) {
  if (!state.hits.length) return;
  state.selected = Math.max(0, Math.min(state.hits.length - 1, i));
  document.querySelectorAll(".hit.selected").forEach((el) => el.classList.remove("selected"));
  const el = document.querySelector('.hit[data-index="' + state.selected + '"]');
  if (el) { el.classList.add("selected"); if (scroll) el.scrollIntoView({ block: "nearest", inline: "nearest" }); }
}

// The picked moments: the selection bar and each card's box agree with state.picked.
export function showSelection() {
  const n = state.picked.size;
  $("#selection").hidden = n === 0;
  $("#selection-count").textContent = plural(n, "moment") + " picked";
  document.querySelectorAll(".card").forEach((c) => {
    const on = state.picked.has(Number(c.dataset.frame));
    c.classList.toggle("picked", on);
    const box = c.querySelector(".pick-hit input");
    if (box) box.checked = on;
  });
}
