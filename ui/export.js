// Taking moments out: the address of a clip of a span (GET /api/videos/{id}/clip), the
// "save clip" link on each card, the player's clip bar (start and end with handles that
// widen the span, the format, the link), and the result list's "Export OTIO / EDL"
// links (GET /api/timeline with the search's own parameters). Links only: the browser
// downloads them (the token travels as the login cookie, never in an address).

import { clock, h } from "./dom.js";

// The address of a clip of video `id` from `start` to `end` seconds.
export function clipUrl(id, start, end, format) {
  const f = format && format !== "mp4" ? "&format=" + format : "";
  return "/api/videos/" + id + "/clip?start=" + start.toFixed(2) + "&end=" + end.toFixed(2) + f;
}

// The card's "save clip" link: the moment as an MP4.
export function saveClipLink(s) {
  return h("a", { class: "save-clip", href: clipUrl(s.video_id, s.start, s.end), download: "", title: "Save this moment as an MP4 clip" }, "save clip");
}

// The player's clip bar for segment `s`: start and end (each with a handle that moves it
// out by a second), the format, the link to save.
export function clipBar(s, duration) {
  const span = { start: s.start, end: s.end };
  const fmt = h("select", { id: "clip-format", "aria-label": "Clip format" },
    h("option", { value: "mp4" }, "mp4"), h("option", { value: "webm" }, "webm"), h("option", { value: "gif" }, "gif"),
    h("option", { value: "webp" }, "webp"));
  const link = h("a", { id: "save-clip", class: "button", download: "" }, "Save clip");
  const label = h("span", { id: "clip-span", class: "muted" });
  const show = () => {
    link.href = clipUrl(s.video_id, span.start, span.end, fmt.value);
    label.textContent = clock(span.start) + "–" + clock(span.end);
  };
  const widen = (side, by) => () => {
    if (side === "start") span.start = Math.max(0, span.start - by);
    else span.end = duration ? Math.min(duration, span.end + by) : span.end + by;
    show();
  };
  fmt.addEventListener("change", show);
  show();
  return h("div", { id: "clip-bar" },
    h("button", { type: "button", id: "clip-widen-start", title: "Start a second earlier", onclick: widen("start", 1) }, "◀ 1 s"),
    label,
    h("button", { type: "button", id: "clip-widen-end", title: "End a second later", onclick: widen("end", 1) }, "1 s ▶"),
    fmt, link);
}

// "Export OTIO / EDL" for the result list, searched again by the server with `params`
// (the search's query string without the grouping).
export function timelineLinks(params) {
  const url = (format) => "/api/timeline?format=" + format + "&" + params;
  return h("span", { id: "export-timeline" }, " Export ",
    h("a", { id: "export-otio", href: url("otio"), download: "", title: "The moments as an OpenTimelineIO timeline, in rank order" }, "OTIO"), " / ",
    h("a", { id: "export-edl", href: url("edl"), download: "", title: "The moments as a CMX 3600 EDL, in rank order" }, "EDL"));
}
