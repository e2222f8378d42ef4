// The page's address holds what it shows: the typed text, the filters bar, the tag
// facets, a stored frame or picked moments searched like, weaker matches shown, and the
// moment playing (video, start, end). A search replaces the address (typing does not
// fill the history); playing a moment or asking anew (Enter, a facet, "more like
// this") pushes one, so back and forward step through them. Loading the page, reload
// and back/forward restore it. A picture searched by cannot be written in an address
// and is left out. The token never appears: the UI sends it as the login cookie.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

// Filter inputs and their names in the address.
const FILTERS = { path: "#f-path", ext: "#f-ext", after: "#f-after", before: "#f-before",
  longer: "#f-longer", shorter: "#f-shorter", source: "#f-source" };

// What is searched, as address parameters (without the moment playing).
function searchParams() {
  const p = new URLSearchParams();
  const q = $("#q").value.trim();
  if (q) p.set("q", q);
  for (const [name, sel] of Object.entries(FILTERS)) if ($(sel).value.trim()) p.set(name, $(sel).value.trim());
  for (const t of state.tags) p.append("tag", t);
  if (state.frame) p.set("frame", state.frame.id);
  if (state.like) p.set("like", state.like.join(","));
  if (state.weaker) p.set("weaker", "1");
  return p;
}

// The address of the page showing this search with moment `s` playing.
export function momentLink(s) {
  const p = searchParams();
  p.set("v", s.video_id); p.set("t", s.start.toFixed(2)); p.set("e", s.end.toFixed(2));
  return location.origin + "/?" + p.toString();
}

// Writes the page's state into the address: a new history entry with `push`.
export function saveAddress(push) {
  if (state.restoring) return;
  const p = searchParams();
  if (state.playing) {
    p.set("v", state.playing.video_id); p.set("t", state.playing.start.toFixed(2)); p.set("e", state.playing.end.toFixed(2));
  }
  const url = "/" + (p.toString() ? "?" + p.toString() : "");
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

// Puts the address's state back on the page; `search` runs the search, `openMoment`
// plays a segment (or, given null, closes the player).
export async function restoreAddress(search, openMoment) {
  const p = new URLSearchParams(location.search);
  state.restoring = true;
  try {
    $("#q").value = p.get("q") || "";
    for (const [name, sel] of Object.entries(FILTERS)) $(sel).value = p.get(name) || "";
    state.tags = p.getAll("tag");
    document.querySelectorAll(".facet").forEach((f) => f.classList.toggle("on", state.tags.includes(f.dataset.label)));
    const frame = Number(p.get("frame"));
    state.frame = frame > 0 ? { id: frame, path: "" } : null;
    const like = (p.get("like") || "").split(",").map(Number).filter((x) => x > 0);
    state.like = like.length ? like : null;
    state.image = null;
    state.weaker = p.get("weaker") === "1";
    await search();
    const v = Number(p.get("v")), t = Number(p.get("t")), e = Number(p.get("e"));
    if (v > 0 && Number.isFinite(t)) {
      const d = await api("/api/videos/" + v).catch(() => null);
      if (d) await openMoment({ video_id: v, path: d.video.path, start: t, end: Number.isFinite(e) && e > t ? e : t + 1 });
    } else {
      await openMoment(null);
    }
  } finally {
    state.restoring = false;
  }
}
