// The client of the server's JSON API (see /api/openapi.json): one request helper that
// turns a refusal into an Error carrying the server's message, and sends the browser to
// /login when the server asks for its token. Knows nothing of the page.

export async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  if (res.status === 401) {
    // Back to this very address once logged in (a link into the UI keeps its moment).
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("log in first");
  }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || ("HTTP " + res.status));
  return body;
}

// A request with a JSON body.
export function sendJson(method, path, value) {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) });
}
