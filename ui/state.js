// What the search view is showing and was asked: one object the search, results and
// player modules share. The library view keeps no state of its own (it reloads from the
// server each time it is shown).

export const state = {
  // The composed query the shown results answer ("" when nothing was typed or tagged).
  query: "",
  // The server's answer: groups of segments, one group a video; how many weaker ones the
  // cut-off held back; whether they were asked for anyway.
  groups: [], withheld: 0, weaker: false,
  // Every shown segment in page order (a card's data-index points here); the one the
  // keyboard is on; the one playing.
  hits: [], selected: -1, playing: null,
  // The pending search-as-you-type timer, and the number of the latest search sent (an
  // answer to an older one is dropped).
  timer: null, seq: 0,
  // What the search is by besides text, at most one of them: a picture (a File), a
  // stored frame ({id, path}), or the frame ids of picked moments (few-shot).
  image: null, frame: null, like: null,
  // The tag facets switched on, and the moments picked on the page (frame id → segment).
  tags: [], picked: new Map(),
  // The shown search's query string (for "Export OTIO / EDL"); null for a picture.
  params: null,
  // While the address is put back on the page (links.js), nothing writes it; the next
  // search's address is a new history entry (an explicit search, not typing).
  restoring: false, pushNext: false,
};
