// Small helpers shared by the seat map's views.

export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

// On a server with AUTH=jwt, a buyer signs in by opening the page with the token in
// the fragment (http://host/#token=<jwt>, as clients/websocat/mint-jwt.sh makes for
// local testing); it is kept for this tab only. Without one, bookings carry a
// made-up user id, as the old service's clients did.
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem("boxoffice.jwt", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname + "#/");
}
export const buyerToken = () => sessionStorage.getItem("boxoffice.jwt");

/** Headers that prove the caller: the buyer's JWT, and a booking's token if given. */
export function proof(bookingToken) {
  const headers = {};
  const jwt = buyerToken();
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  if (bookingToken) headers["x-booking-token"] = bookingToken;
  return headers;
}

/** A fresh idempotency key: a retry with it can never book twice. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "content-type": "application/json", ...(options.headers ?? {}) } });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

export function userId() {
  let id = localStorage.getItem("boxoffice.user");
  if (!id) {
    id = `web-${Math.random().toString(36).slice(2, 10)}`;
    localStorage.setItem("boxoffice.user", id);
  }
  return id;
}

/** "Thu 31 Dec 2026, 20:00" in the reader's locale. */
export const formatWhen = (iso) => new Date(iso).toLocaleString(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
});

const connection = document.getElementById("connection");
export function showConnection(state) {
  if (!connection) return;
  const text = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", "": "" }[state] ?? state;
  connection.textContent = text;
  connection.className = `connection ${state}`;
}
