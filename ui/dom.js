// The UI's toolkit: building elements, finding them, and the small formats every view
// shares. Owns no state and talks to no server.
//
// Every element the UI makes from data goes through `h`: text becomes text nodes and
// attribute values go through setAttribute, so nothing a file name, a subtitle or a label
// says can become markup. No module assigns data to innerHTML.

export const $ = (sel) => document.querySelector(sel);

// h("span", { class: "range", title: t }, "a", child, ["or", "arrays"]): a new element.
// Attributes: `class`, `dataset` (an object), `style` (an object), `on<event>` (a
// listener), a property for `checked`; any other is an attribute, left out when null,
// undefined or false (true sets it empty). Children: nodes, or anything else as its text;
// null, undefined and false are left out, arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v);
    else if (k === "checked") el.checked = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

export function clock(t) {
  t = Math.max(0, t || 0);
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return String(m).padStart(2, "0") + ":" + s.toFixed(1).padStart(4, "0");
}

export function basename(p) { return (p || "").split("/").pop(); }

// "1 moment", "3 moments".
export function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

// The red bar under the header; null hides it.
export function showError(msg) {
  const el = $("#error");
  if (!msg) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = msg;
  el.hidden = false;
}
