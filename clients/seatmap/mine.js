// "My bookings": the bookings made in this browser, kept in localStorage with their
// tokens (without sign-in, the token is what proves a booking is yours). Each entry
// is checked against the server when shown, so a hold that expired or a booking
// cancelled elsewhere reads as such.
import { formatMoney } from "/assets/hallmap.js";
import { api, el, formatWhen, newKey, proof } from "/assets/util.js";

const KEY = "boxoffice.bookings";
const LIVE = new Set(["PENDING", "CONFIRMED"]);

export const store = {
  all() {
    try {
      return JSON.parse(localStorage.getItem(KEY) ?? "[]");
    } catch {
      return [];
    }
  },
  save(list) {
    // The newest 50 are plenty for a browser; older ones drop off.
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, 50)));
    window.dispatchEvent(new CustomEvent("my-bookings"));
  },
  /** Remembers a booking from a `booked` reply. */
  add(booking, show, places) {
    const ttl = booking.expires_at ? new Date(booking.expires_at) - new Date(booking.created_at) : 0;
    const entry = {
      id: booking.id, show_id: booking.show_id, show_name: show?.name ?? `Show ${booking.show_id}`,
      start_time: show?.start_time, seat_nos: booking.seat_nos, places: places || booking.seat_nos.join(", "),
      total: booking.total, currency: booking.currency, status: booking.status, token: booking.token,
      // The countdown runs on this browser's clock from now, so clock skew does not matter.
      ends: booking.expires_at ? Date.now() + ttl : null,
    };
    this.save([entry, ...this.all().filter((b) => b.id !== booking.id)]);
    return entry;
  },
  update(id, patch) {
    this.save(this.all().map((b) => (b.id === id ? { ...b, ...patch } : b)));
  },
  /** Seat numbers of this browser's live bookings of a show. */
  liveSeats(showId) {
    const seats = new Set();
    for (const b of this.all()) {
      if (b.show_id !== showId || !LIVE.has(b.status)) continue;
      if (b.status === "PENDING" && b.ends && b.ends < Date.now()) continue;
      b.seat_nos.forEach((n) => seats.add(n));
    }
    return seats;
  },
};

/** Confirms or cancels; returns a sentence for the page to show. */
export async function act(entry, kind) {
  const { status, body } = await api(`/bookings/${entry.id}/${kind}`, {
    method: "POST", headers: { ...proof(entry.token), "idempotency-key": newKey() },
  });
  if (status === 200) {
    store.update(entry.id, { status: body.booking.status, ends: null });
    return { ok: true, text: kind === "confirm" ? `Booking ${entry.id} is confirmed: the seats are yours.` : `Booking ${entry.id} is cancelled.` };
  }
  if (body.code === "BOOKING_EXPIRED") {
    store.update(entry.id, { status: "EXPIRED", ends: null });
    return { ok: false, text: "The hold expired and its seats were released." };
  }
  return { ok: false, text: body.error ?? `Could not ${kind} the booking.` };
}

/** Asks the server what became of the live bookings in the list. */
export async function refresh(showId) {
  const live = store.all().filter((b) => LIVE.has(b.status) && (showId === undefined || b.show_id === showId));
  await Promise.all(live.map(async (b) => {
    const { status, body } = await api(`/bookings/${b.id}`, { headers: proof(b.token) }).catch(() => ({ status: 0 }));
    if (status === 200 && body.booking.status !== b.status) store.update(b.id, { status: body.booking.status });
    if (status === 404) store.update(b.id, { status: "UNKNOWN" });
  }));
}

const STATUS = { PENDING: "Held", CONFIRMED: "Booked", EXPIRED: "Expired", CANCELLED: "Cancelled", UNKNOWN: "Not found" };

const countdown = (entry) => {
  const left = Math.max(0, Math.ceil((entry.ends - Date.now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
};

/** A list of bookings with their actions; re-renders when the store changes. */
export function bookingList(container, { showId, say }) {
  const render = () => {
    const list = store.all().filter((b) => showId === undefined || b.show_id === showId);
    if (!list.length) {
      container.replaceChildren(el("p", { class: "muted" }, "No bookings from this browser yet."));
      return;
    }
    container.replaceChildren(el("ul", { class: "bookings" }, ...list.map((b) => {
      const pending = b.status === "PENDING" && (!b.ends || b.ends > Date.now());
      const status = b.status === "PENDING" && !pending ? "EXPIRED" : b.status;
      const actions = [];
      if (pending) actions.push(el("button", { class: "action primary confirm", onclick: async () => say(await act(b, "confirm")) }, "Confirm"));
      if (pending || status === "CONFIRMED") actions.push(el("button", { class: "action cancel", onclick: async () => say(await act(b, "cancel")) }, "Cancel"));
      return el("li", { class: `booking ${status.toLowerCase()}`, "data-booking": b.id },
        el("div", {},
          el("strong", {}, `Booking ${b.id}`), " · ", el("span", { class: "status" }, STATUS[status] ?? status),
          pending && b.ends ? el("span", { class: "countdown", "data-ends": b.ends }, ` · expires in ${countdown(b)}`) : null),
        el("div", { class: "muted" }, showId === undefined ? `${b.show_name}${b.start_time ? `, ${formatWhen(b.start_time)}` : ""} · ` : "",
          b.places ?? `Seats ${b.seat_nos.join(", ")}`, b.total ? ` · ${formatMoney(b.total, b.currency)}` : ""),
        actions.length ? el("div", { class: "actions" }, ...actions) : null);
    })));
  };
  render();
  window.addEventListener("my-bookings", render);
  // Countdowns tick; a hold that runs out re-renders as expired.
  const timer = setInterval(() => {
    for (const node of container.querySelectorAll("[data-ends]")) {
      const ends = Number(node.dataset.ends);
      if (ends <= Date.now()) return render();
      node.textContent = ` · expires in ${countdown({ ends })}`;
    }
  }, 500);
  return () => {
    clearInterval(timer);
    window.removeEventListener("my-bookings", render);
  };
}
