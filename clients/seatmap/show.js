// One show's page: the hall drawn as it is, live; selecting seats or asking for the
// best ones; booking, holding, and the bookings made from this browser.
import { LiveShow } from "/assets/live.js";
import { HallMap, addMoney, describeSeats, formatMoney } from "/assets/hallmap.js";
import { bookingList, refresh, store } from "/assets/mine.js";
import { api, buyerToken, el, formatWhen, newKey, showConnection, userId } from "/assets/util.js";

export function showView(view, showId) {
  let teardown = [];
  const leave = () => teardown.forEach((f) => f());
  view.replaceChildren(el("p", { class: "muted" }, "Loading the show…"));
  // The layout never changes: the browser keeps it (immutable, by its ETag), and
  // the socket then sends live state only.
  Promise.all([api(`/shows/${showId}`), api(`/shows/${showId}/layout`)]).then(([{ status, body }, layout]) => {
    if (status === 404) return notFound(view, showId);
    if (status !== 200) {
      view.replaceChildren(el("h1", {}, "The show cannot be loaded"), el("p", {}, body.error ?? "The server did not answer; reload to try again."));
      return;
    }
    teardown = page(view, body.show, layout.status === 200 ? layout.body : undefined);
  }).catch(() => view.replaceChildren(el("h1", {}, "The server cannot be reached"), el("p", {}, "Reload to try again.")));
  return leave;
}

function notFound(view, showId) {
  document.title = "Show not found · boxoffice";
  view.replaceChildren(el("section", { class: "not-found", id: "not-found" },
    el("h1", {}, "Show not found"),
    el("p", {}, `There is no show ${showId}. The link may be wrong, or the show was never created.`),
    el("p", {}, el("a", { href: "#/" }, "See all shows"))));
}

function page(view, show, layout) {
  document.title = `${show.name} · boxoffice`;
  const live = new LiveShow(show.id, { token: buyerToken(), layout });
  const max = show.max_seats_per_booking ?? 10;
  const categories = new Map(show.categories.map((c) => [c.key, c]));
  const selected = new Set();
  const inFlight = new Set(); // seats of this page's bookings not answered yet
  let mine = store.liveSeats(show.id);

  const map = new HallMap(show, {
    state: (seat) => ({ selected: selected.has(seat.seat_no), mine: mine.has(seat.seat_no) && seat.status !== "AVAILABLE" }),
    onToggle: (seatNo) => toggle(seatNo),
    label: `Seats of ${show.name}`,
  });
  const summary = el("p", { id: "summary", class: "muted", "aria-live": "polite" });
  const saleBox = el("p", { id: "sale", class: "sale", hidden: true, role: "status" });
  // The waiting room: where this buyer stands, then their turn and its time left.
  const queueBox = el("section", { id: "queue", class: "queue", hidden: true, "aria-live": "polite", "aria-label": "Waiting room" });
  const message = el("div", { id: "message", role: "alert" });
  const receipt = el("section", { id: "receipt", class: "receipt", hidden: true, "aria-label": "Your booking" });
  const mineBox = el("div", { id: "my-bookings" });
  const selection = el("span", { id: "selection", "aria-live": "polite" }, "No seats selected");
  const bookBtn = el("button", { class: "action primary", id: "book", disabled: true }, "Book");
  const holdBtn = el("button", { class: "action", id: "hold", disabled: true }, "Hold");
  const bestCount = el("input", { id: "best-count", type: "number", min: "1", max: String(max), value: "2", "aria-label": "How many seats" });
  const bestCategory = el("select", { id: "best-category", "aria-label": "Category" },
    el("option", { value: "" }, "Any category"),
    ...show.categories.map((c) => el("option", { value: c.key }, `${c.name} (${formatMoney(c.price, c.currency)})`)));
  const bestBtn = el("button", { class: "action", id: "best" }, "Best seats");

  const legend = el("ul", { class: "legend", "aria-label": "Prices and symbols" },
    ...show.categories.map((c) => el("li", { "data-category": c.key },
      el("span", { class: "swatch", style: `--c: ${c.color}` }), `${c.name} ${formatMoney(c.price, c.currency)}`)),
    el("li", {}, el("span", { class: "swatch held" }), "held"),
    el("li", {}, el("span", { class: "swatch sold" }, "✕"), "sold"),
    el("li", {}, el("span", { class: "swatch selected" }, "✓"), "your selection"),
    el("li", {}, el("span", { class: "swatch mine" }, "★"), "yours"));

  view.replaceChildren(
    el("section", { class: "show-head" },
      el("h1", {}, show.name),
      el("p", { class: "when" }, el("time", { datetime: show.start_time }, formatWhen(show.start_time))),
      summary,
      saleBox),
    queueBox,
    legend,
    map.element,
    message,
    receipt,
    el("section", { class: "mine-box", "aria-labelledby": "mine-title" }, el("h2", { id: "mine-title" }, "My bookings"), mineBox),
    el("div", { class: "action-bar", role: "region", "aria-label": "Selection" },
      el("div", { class: "bar-row" }, selection, el("span", { class: "bar-buttons" }, bookBtn, holdBtn)),
      el("div", { class: "bar-row best" }, el("label", { for: "best-count" }, "Best"), bestCount, bestCategory, bestBtn)));

  const say = (text, kind = "error") => {
    message.className = `message ${kind}`;
    message.textContent = text;
  };
  const place = (seatNo) => {
    const s = live.seats.get(seatNo);
    return s ? `row ${s.row} seat ${s.number}` : seatNo;
  };
  const priceOf = (seatNo) => categories.get(live.seats.get(seatNo)?.category)?.price ?? "0";

  // Booking is on only while the sale is open: the server says so in the first
  // frame and the instant it changes (never this browser's own clock).
  let sales = show.sales ?? "open";
  // With a waiting room, only an admitted buyer books; the hall stays visible.
  const mayBook = () => sales === "open" && (!show.queue || live.admission !== null);
  const updateBar = () => {
    const n = selected.size;
    const total = addMoney([...selected].map(priceOf));
    selection.textContent = n ? `${n} seat${n > 1 ? "s" : ""} · ${formatMoney(total, show.currency)}` : "No seats selected";
    bookBtn.disabled = n === 0 || !mayBook();
    holdBtn.disabled = n === 0 || !mayBook();
    bestBtn.disabled = !mayBook();
  };
  let firstPosition = null;
  let turnTimer;
  const clock = (secs) => {
    const s = Math.max(0, Math.round(secs));
    const m = Math.floor(s / 60);
    return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m}:${String(s % 60).padStart(2, "0")}`;
  };
  const renderQueue = () => {
    clearInterval(turnTimer);
    const place = live.queue;
    if (!show.queue || !place) return updateBar();
    queueBox.hidden = false;
    if (live.admission) {
      const ends = new Date(live.admission.expires_at);
      const tick = () => {
        queueBox.replaceChildren(el("h2", {}, "It's your turn"),
          el("p", { id: "turn-left" }, `Choose your seats: ${clock((ends - Date.now()) / 1000)} left.`));
      };
      tick();
      turnTimer = setInterval(tick, 1000);
    } else if (place.state === "waiting") {
      const through = Math.max(live.progress?.admitted_through ?? 0, place.admitted_through ?? 0);
      const rate = live.progress?.admit_per_minute ?? show.queue.admit_per_minute;
      if (place.rank == null) {
        queueBox.replaceChildren(el("h2", {}, "You're in the waiting room"),
          el("p", {}, "When the sale opens, everyone here gets a place in random order: arriving earlier does not help, and you lose nothing by waiting on this page."));
      } else {
        const position = Math.max(1, place.rank - through);
        firstPosition ??= position;
        const done = firstPosition > 1 ? (firstPosition - position) / (firstPosition - 1) : 1;
        const eta = ((position - 1) * 60) / Math.max(1, rate);
        queueBox.replaceChildren(el("h2", {}, "You're in the queue"),
          el("p", { id: "queue-position" }, `Your place: ${position}. `, el("span", { id: "queue-ahead" }, `${position - 1} ahead of you`),
            `, about ${clock(eta)} to wait.`),
          el("progress", { id: "queue-progress", max: "1", value: String(done), "aria-label": "Progress in the queue" }),
          live.progress?.paused ? el("p", { class: "muted" }, "Admissions are paused for a moment.") : null,
          el("p", { class: "muted" }, "Keep this page open; you can look at the hall meanwhile."));
      }
    } else if (place.state === "not_open") {
      queueBox.replaceChildren(el("h2", {}, "The waiting room opens soon"),
        el("p", {}, `It opens at ${formatWhen(place.opens_at)}; this page joins by itself.`));
    } else {
      queueBox.replaceChildren(el("h2", {}, "Your turn has ended"),
        el("p", {}, place.state === "done" ? "Thank you: your booking is done." : "Your time ran out. Reload to join the queue again."));
    }
    updateBar();
  };
  let countdown;
  const renderSale = () => {
    clearInterval(countdown);
    const sale = live.sale ?? show;
    sales = sale.sales ?? "open";
    saleBox.hidden = sales === "open";
    if (sales === "upcoming") {
      const opens = new Date(sale.sales_open_at);
      const tick = () => {
        const left = Math.max(0, Math.round((opens - Date.now()) / 1000));
        const [h, m, sec] = [Math.floor(left / 3600), Math.floor((left % 3600) / 60), left % 60];
        const clock = `${h ? `${h}:` : ""}${String(m).padStart(h ? 2 : 1, "0")}:${String(sec).padStart(2, "0")}`;
        saleBox.textContent = left > 0 ? `On sale in ${clock}, at ${formatWhen(sale.sales_open_at)}` : "Opening…";
      };
      tick();
      countdown = setInterval(tick, 1000);
    } else if (sales === "closed") {
      saleBox.textContent = "Sales for this show have closed.";
    }
    saleBox.className = `sale ${sales}`;
    updateBar();
  };
  const renderSummary = () => {
    const c = live.counts();
    summary.textContent = `${c.AVAILABLE} available, ${c.RESERVED} held, ${c.BOOKED} sold`;
  };
  const toggle = (seatNo) => {
    const seat = live.seats.get(seatNo);
    if (seat?.status !== "AVAILABLE") return;
    if (selected.has(seatNo)) selected.delete(seatNo);
    else if (selected.size >= max) return say(`At most ${max} seats per booking.`);
    else selected.add(seatNo);
    map.paint(seatNo);
    updateBar();
  };

  live.addEventListener("state", (e) => showConnection(e.detail));
  live.addEventListener("sale", renderSale);
  live.addEventListener("queue", renderQueue);
  renderSale();
  live.addEventListener("auth-error", (e) => say(`Signing in failed: ${e.detail}`));
  live.addEventListener("change", (e) => {
    const taken = [];
    for (const seatNo of e.detail) {
      if (selected.has(seatNo) && live.seats.get(seatNo).status !== "AVAILABLE") {
        selected.delete(seatNo);
        if (!inFlight.has(seatNo)) taken.push(seatNo);
      }
    }
    map.upsert(e.detail, (n) => live.seats.get(n));
    renderSummary();
    updateBar();
    if (taken.length) {
      const list = taken.map(place).join(", ");
      say(`${taken.length > 1 ? "Seats" : "Seat"} ${list} ${taken.length > 1 ? "were" : "was"} just taken by someone else and ${taken.length > 1 ? "are" : "is"} no longer selected.`);
    }
  });
  showConnection(live.state);

  const onMine = () => {
    const before = mine;
    mine = store.liveSeats(show.id);
    for (const n of new Set([...before, ...mine])) map.paint(n);
  };
  window.addEventListener("my-bookings", onMine);
  const stopList = bookingList(mineBox, { showId: show.id, say: ({ ok, text }) => say(text, ok ? "ok" : "error") });
  refresh(show.id);

  const showReceipt = (entry) => {
    const seats = entry.places ?? entry.seat_nos.join(", ");
    receipt.replaceChildren(
      el("h2", {}, entry.status === "PENDING" ? "Held for you" : "Booked"),
      el("p", {}, "Reference ", el("strong", { id: "reference" }, `#${entry.id}`)),
      el("p", { id: "receipt-seats" }, seats),
      el("p", {}, "Total ", el("strong", { id: "receipt-total" }, formatMoney(entry.total, entry.currency))),
      entry.status === "PENDING" ? el("p", { class: "muted" }, "Confirm it under My bookings before the hold runs out.") : null);
    receipt.hidden = false;
  };

  const book = async (command, seatNos) => {
    command = { type: "book", idempotency_key: newKey(), ...command };
    if (!buyerToken()) command.user_id = userId();
    seatNos.forEach((n) => inFlight.add(n));
    // One key for this booking and all its retries: if the connection drops before
    // the answer, asking again returns what happened instead of booking twice.
    let reply;
    for (let attempt = 1; !reply; attempt += 1) {
      try {
        reply = await live.request(command);
      } catch {
        if (attempt === 3) {
          seatNos.forEach((n) => inFlight.delete(n));
          return say("The connection dropped and the booking could not be checked. Look at My bookings and the map before trying again.");
        }
        say("The connection dropped; checking what happened to the booking…");
        await live.whenLive().catch(() => {});
      }
    }
    if (reply.type === "booked") {
      const entry = store.add(reply.booking, show, describeSeats(reply.booking.seats ?? [], show.sections));
      for (const n of reply.booking.seat_nos) selected.delete(n);
      reply.booking.seat_nos.forEach((n) => map.paint(n));
      showReceipt(entry);
      say(`${entry.status === "PENDING" ? "Holding" : "Booked"} ${reply.booking.seat_nos.map(place).join(", ")}.`, "ok");
    } else if (reply.code === "SEATS_UNAVAILABLE") {
      // Show the message once the map already shows those seats as taken.
      await live.waitFor(reply.seat_nos, (s) => s.status !== "AVAILABLE");
      reply.seat_nos.forEach((n) => selected.delete(n));
      reply.seat_nos.forEach((n) => map.paint(n));
      const list = reply.seat_nos.map(place).join(", ");
      say(`${reply.seat_nos.length > 1 ? "Seats" : "Seat"} ${list} ${reply.seat_nos.length > 1 ? "were" : "was"} just taken. Pick another.`);
    } else if (reply.code === "SALE_NOT_OPEN") {
      say(`The sale opens at ${formatWhen(reply.opens_at)}.`);
    } else if (reply.code === "NO_ADJACENT_SEATS" || reply.code === "NOT_ENOUGH_SEATS") {
      say(`${reply.error}. Try fewer seats or another category.`);
    } else {
      say(reply.error ?? "The booking failed.");
    }
    seatNos.forEach((n) => inFlight.delete(n));
    updateBar();
  };
  bookBtn.addEventListener("click", () => book({ seat_nos: [...selected], immediate_confirm: true }, [...selected]));
  holdBtn.addEventListener("click", () => book({ seat_nos: [...selected], immediate_confirm: false }, [...selected]));
  bestBtn.addEventListener("click", () => {
    const count = Math.min(Math.max(Number(bestCount.value) || 1, 1), max);
    const best = { count };
    if (bestCategory.value) best.category = bestCategory.value;
    // The best seats are held, so the buyer sees where they are before paying.
    book({ best_available: best, immediate_confirm: false }, []);
  });

  return [() => live.close(), () => clearInterval(countdown), () => clearInterval(turnTimer), () => showConnection(""), stopList, () => window.removeEventListener("my-bookings", onMine)];
}
