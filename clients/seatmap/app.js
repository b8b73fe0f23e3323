// The boxoffice seat map: a show list, a live seat grid per show, and an admin view.
// Plain ES modules, no build step; served by boxoffice itself.
import { LiveShow, STATUS_TEXT } from "/assets/live.js";

const view = document.getElementById("view");
const connection = document.getElementById("connection");
let leave = () => {}; // tears down the current view (timers, sockets)

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

function showConnection(state) {
  const text = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", "": "" }[state] ?? state;
  connection.textContent = text;
  connection.className = `connection ${state}`;
}

// ---- who is booking ------------------------------------------------------------------
// On a server with AUTH=jwt, a buyer signs in by opening the page with the token in
// the fragment (http://host/#token=<jwt>, as clients/websocat/mint-jwt.sh makes for
// local testing); it is kept for this tab only. Without one, bookings carry a
// made-up user id, as the old service's clients did.
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem("boxoffice.jwt", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname + "#/");
}
const buyerToken = () => sessionStorage.getItem("boxoffice.jwt");

/** Headers that prove the caller: the buyer's JWT, and a booking's token if given. */
function proof(bookingToken) {
  const headers = {};
  const jwt = buyerToken();
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  if (bookingToken) headers["x-booking-token"] = bookingToken;
  return headers;
}

/** A fresh idempotency key: a retry with it can never book twice. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "content-type": "application/json", ...(options.headers ?? {}) } });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

// ---- show list ----------------------------------------------------------------------
function listView() {
  view.replaceChildren(el("h1", {}, "Shows"), el("p", { id: "list-status" }, "Loading…"));
  showConnection("");
  const render = async () => {
    const { status, body } = await api("/shows").catch(() => ({ status: 0 }));
    if (status !== 200) {
      document.getElementById("list-status").textContent = "Cannot reach the server; retrying…";
      return;
    }
    const rows = body.shows.map((s) =>
      el("tr", { "data-show": s.id },
        el("td", {}, el("a", { href: `#/shows/${s.id}` }, s.name)),
        el("td", {}, new Date(s.start_time).toLocaleString()),
        el("td", { class: "available" }, `${s.available_seats} of ${s.total_seats} available`)));
    const table = el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Show"), el("th", {}, "Starts"), el("th", {}, "Availability"))),
      el("tbody", {}, ...rows));
    view.replaceChildren(el("h1", {}, "Shows"), body.count ? table : el("p", {}, "No shows yet. Create one in Admin."));
  };
  render();
  // Availability counts stay live by polling the list, which is cheap.
  const timer = setInterval(render, 2000);
  return () => clearInterval(timer);
}

// ---- one show -----------------------------------------------------------------------
const holdKey = (showId) => `boxoffice.hold.${showId}`;

function showView(showId) {
  const live = new LiveShow(showId, { token: buyerToken() });
  const selected = new Set();
  const buttons = new Map();
  let hold = JSON.parse(sessionStorage.getItem(holdKey(showId)) ?? "null");
  let countdown;

  const title = el("h1", {}, `Show ${showId}`);
  const summary = el("p", { id: "summary", "aria-live": "polite" });
  const grid = el("div", { class: "grid", role: "group", "aria-label": "Seats" });
  const message = el("div", { id: "message", role: "alert" });
  const bookNow = el("button", { class: "action primary", id: "book", disabled: "" }, "Book now");
  const holdBtn = el("button", { class: "action", id: "hold", disabled: "" }, "Hold");
  const holdPanel = el("section", { class: "hold", id: "hold-panel", hidden: "", "aria-label": "Your hold" });
  const legend = el("p", { class: "legend" },
    el("span", { class: "free" }, "available"), el("span", { class: "held" }, "held ◐"),
    el("span", { class: "sold" }, "sold ✕"), el("span", { class: "mine" }, "your selection ✓"));
  view.replaceChildren(title, summary, legend, grid, el("div", { class: "actions" }, bookNow, holdBtn), message, holdPanel);

  api(`/shows/${showId}`).then(({ status, body }) => {
    title.textContent = status === 200 ? body.show.name : "Show not found";
  });

  const say = (text, kind = "error") => {
    message.className = `message ${kind}`;
    message.textContent = text;
  };
  live.addEventListener("auth-error", (e) => say(`Signing in failed: ${e.detail}`));
  const updateActions = () => {
    const none = selected.size === 0;
    bookNow.disabled = none;
    holdBtn.disabled = none || !!hold;
  };
  const renderSeat = (seatNo) => {
    const seat = live.seats.get(seatNo);
    let button = buttons.get(seatNo);
    if (!button) {
      button = el("button", { class: "seat", type: "button", "data-seat": seatNo }, seatNo);
      button.addEventListener("click", () => toggle(seatNo));
      buttons.set(seatNo, button);
      grid.append(button);
    }
    if (seat.status !== "AVAILABLE") selected.delete(seatNo);
    button.dataset.status = seat.status;
    button.setAttribute("aria-pressed", selected.has(seatNo) ? "true" : "false");
    button.setAttribute("aria-label", `Seat ${seatNo}, ${selected.has(seatNo) ? "selected" : STATUS_TEXT[seat.status]}`);
    button.setAttribute("aria-disabled", seat.status === "AVAILABLE" ? "false" : "true");
  };
  const renderSummary = () => {
    const c = live.counts();
    summary.textContent = `${c.AVAILABLE} available, ${c.RESERVED} held, ${c.BOOKED} sold`;
  };
  const toggle = (seatNo) => {
    if (live.seats.get(seatNo)?.status !== "AVAILABLE") return;
    if (selected.has(seatNo)) selected.delete(seatNo); else selected.add(seatNo);
    renderSeat(seatNo);
    updateActions();
  };

  live.addEventListener("state", (e) => showConnection(e.detail));
  live.addEventListener("change", (e) => {
    const seatNos = live.order.length === buttons.size ? e.detail : live.order;
    for (const seatNo of seatNos) if (live.seats.has(seatNo)) renderSeat(seatNo);
    renderSummary();
    updateActions();
  });
  showConnection(live.state);

  const book = async (immediate) => {
    const seatNos = [...selected];
    // One key for this booking and all its retries: if the connection drops before
    // the answer, asking again returns what happened instead of booking twice.
    const command = { type: "book", seat_nos: seatNos, immediate_confirm: immediate, idempotency_key: newKey() };
    if (!buyerToken()) command.user_id = userId();
    let reply;
    for (let attempt = 1; !reply; attempt += 1) {
      try {
        reply = await live.request(command);
      } catch {
        if (attempt === 3) return say("The connection dropped and the booking could not be checked. Look at the seat map before trying again.");
        say("The connection dropped; checking what happened to the booking…");
        await live.whenLive().catch(() => {});
      }
    }
    if (reply.type === "booked") {
      selected.clear();
      if (immediate) {
        say(`Booked seat${seatNos.length > 1 ? "s" : ""} ${reply.booking.seat_nos.join(", ")}.`, "ok");
      } else {
        const b = reply.booking;
        const ttl = new Date(b.expires_at) - new Date(b.created_at);
        // The countdown runs on this browser's clock from now, so clock skew does not matter.
        hold = { id: b.id, token: b.token, seat_nos: b.seat_nos, ends: Date.now() + ttl };
        sessionStorage.setItem(holdKey(showId), JSON.stringify(hold));
        say(`Holding seat${seatNos.length > 1 ? "s" : ""} ${b.seat_nos.join(", ")}.`, "ok");
        renderHold();
      }
    } else if (reply.code === "SEATS_UNAVAILABLE") {
      // Show the message once the grid already shows those seats as taken.
      await live.waitFor(reply.seat_nos, (s) => s.status !== "AVAILABLE");
      reply.seat_nos.forEach((n) => selected.delete(n));
      const list = reply.seat_nos.join(", ");
      say(`Seat${reply.seat_nos.length > 1 ? "s" : ""} ${list} ${reply.seat_nos.length > 1 ? "were" : "was"} just taken. Pick another.`);
    } else {
      say(reply.error ?? "The booking failed.");
    }
    for (const n of seatNos) if (live.seats.has(n)) renderSeat(n);
    updateActions();
  };
  bookNow.addEventListener("click", () => book(true));
  holdBtn.addEventListener("click", () => book(false));

  const endHold = (text, kind) => {
    hold = null;
    sessionStorage.removeItem(holdKey(showId));
    clearInterval(countdown);
    holdPanel.hidden = true;
    if (text) say(text, kind);
    updateActions();
  };
  const act = async (kind) => {
    const { status, body } = await api(`/bookings/${hold.id}/${kind}`, {
      method: "POST", headers: { ...proof(hold.token), "idempotency-key": newKey() },
    });
    if (status === 200) endHold(kind === "confirm" ? `Confirmed: seats ${hold.seat_nos.join(", ")} are yours.` : "Hold cancelled.", "ok");
    else if (body.code === "BOOKING_EXPIRED") endHold("Your hold expired and the seats were released.");
    else say(body.error ?? `Could not ${kind}.`);
  };
  const renderHold = () => {
    if (!hold) return;
    const clock = el("span", { class: "countdown", id: "countdown" });
    holdPanel.replaceChildren(
      el("h2", {}, `Held: seat${hold.seat_nos.length > 1 ? "s" : ""} ${hold.seat_nos.join(", ")}`),
      el("p", {}, "Expires in ", clock),
      el("div", { class: "actions" },
        el("button", { class: "action primary", id: "confirm", onclick: () => act("confirm") }, "Confirm"),
        el("button", { class: "action", id: "cancel", onclick: () => act("cancel") }, "Cancel")));
    holdPanel.hidden = false;
    const tick = () => {
      const left = Math.max(0, Math.ceil((hold.ends - Date.now()) / 1000));
      clock.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      if (left === 0) endHold("Your hold expired and the seats were released.");
    };
    clearInterval(countdown);
    countdown = setInterval(tick, 250);
    tick();
    updateActions();
  };
  // A reload keeps control of the hold, if it is still one.
  if (hold) {
    api(`/bookings/${hold.id}`, { headers: proof(hold.token) }).then(({ status, body }) => {
      if (status === 200 && body.booking.status === "PENDING") renderHold();
      else endHold();
    });
  }

  return () => {
    clearInterval(countdown);
    live.close();
    showConnection("");
  };
}

function userId() {
  let id = localStorage.getItem("boxoffice.user");
  if (!id) {
    id = `web-${Math.random().toString(36).slice(2, 10)}`;
    localStorage.setItem("boxoffice.user", id);
  }
  return id;
}

// ---- admin --------------------------------------------------------------------------
function adminView() {
  showConnection("");
  const result = el("div", { id: "admin-result", role: "alert" });
  const field = (label, attrs) => [el("label", { for: attrs.id }, label), el("input", attrs)];
  const form = el("form", { id: "create-show" },
    ...field("Admin token", { id: "token", type: "password", autocomplete: "off", value: sessionStorage.getItem("boxoffice.admin") ?? "" }),
    ...field("Show name", { id: "name", required: "", maxlength: "200" }),
    ...field("Starts at", { id: "start", type: "datetime-local", required: "" }),
    ...field("Seats", { id: "seats", type: "number", min: "1", required: "", value: "40" }),
    el("p", {}, el("button", { class: "action primary", type: "submit" }, "Create show")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = form.querySelector("#token").value.trim();
    sessionStorage.setItem("boxoffice.admin", token);
    const { status, body } = await api("/admin/shows", {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body: JSON.stringify({
        name: form.querySelector("#name").value,
        start_time: new Date(form.querySelector("#start").value).toISOString(),
        total_seats: Number(form.querySelector("#seats").value),
      }),
    });
    if (status === 201) {
      result.className = "message ok";
      result.replaceChildren(`Created “${body.show.name}”. `, el("a", { href: `#/shows/${body.show.id}` }, "Open its seat map"));
    } else {
      result.className = "message error";
      result.textContent = body.error ?? `Failed (${status}).`;
    }
  });
  view.replaceChildren(el("h1", {}, "Create a show"), form, result);
  return () => {};
}

// ---- routing ------------------------------------------------------------------------
function route() {
  leave();
  const path = location.hash.replace(/^#/, "") || "/";
  const show = path.match(/^\/shows\/(\d+)$/);
  leave = show ? showView(Number(show[1])) : path === "/admin" ? adminView() : listView();
  view.focus();
}
window.addEventListener("hashchange", route);
route();
