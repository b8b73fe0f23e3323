// A read-only availability display for lobby screens: /kiosk?show=1 or /kiosk?show=1,2.
// One show fills the screen: its name and time, what is left per price category, and
// the hall drawn live. It keeps nothing but the current seat map per show, so it can
// run for days; the connection reconnects by itself (LiveShow), and the screen says
// plainly when it is doing so.
import { LiveShow } from "/assets/live.js";
import { HallMap, formatMoney } from "/assets/hallmap.js";

const root = document.getElementById("shows");
const ids = (new URLSearchParams(location.search).get("show") ?? "1")
  .split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
root.dataset.count = ids.length;

const html = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const when = (iso) => new Date(iso).toLocaleString(undefined, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" });

for (const id of ids) {
  const panel = document.createElement("section");
  panel.className = "show connecting";
  panel.dataset.show = id;
  panel.innerHTML = `<header><div><h1>Show ${id}</h1><p class="when"></p><p class="sale" hidden></p><p class="queue-info" hidden></p></div>
      <span class="state connecting" role="status">Connecting…</span></header>
    <div class="body"><div class="map"></div><aside class="tiles"></aside></div>
    <footer>
      <span class="totals"><b data-count="AVAILABLE">–</b> available · <b data-count="RESERVED">–</b> held · <b data-count="BOOKED">–</b> sold</span>
      <span class="last">No changes yet</span>
    </footer>
    <div class="overlay" aria-hidden="true">Reconnecting…</div>`;
  root.append(panel);
  start(panel, id);
}

async function start(panel, id) {
  let show;
  for (let wait = 1000; !show; wait = Math.min(wait * 2, 30000)) {
    try {
      const response = await fetch(`/shows/${id}`);
      if (response.status === 404) {
        panel.querySelector("h1").textContent = `Show ${id} not found`;
        panel.className = "show missing";
        return;
      }
      if (response.ok) show = (await response.json()).show;
    } catch { /* the server is away: try again */ }
    if (!show) await new Promise((ok) => setTimeout(ok, wait));
  }
  panel.querySelector("h1").textContent = show.name;
  panel.querySelector(".when").textContent = when(show.start_time);
  const map = new HallMap(show, { readonly: true, label: `Seats of ${show.name}` });
  panel.querySelector(".map").append(map.element);
  const tiles = panel.querySelector(".tiles");
  tiles.innerHTML = show.categories.map((c) => `
    <div class="tile" data-category="${html(c.key)}" style="--c: ${html(c.color)}">
      <div class="name">${html(c.name)} <span class="price">${html(formatMoney(c.price, c.currency))}</span></div>
      <div class="left"><strong>–</strong> <span>of ${c.total_seats} left</span></div>
      <div class="bar"><i></i></div>
    </div>`).join("");

  const layout = await fetch(`/shows/${id}/layout`).then((r) => (r.ok ? r.json() : undefined)).catch(() => undefined);
  const live = new LiveShow(id, { layout, watch: true });
  // "On sale at …" before the sale opens, "Sold out" when nothing is left.
  const sale = panel.querySelector(".sale");
  const renderSale = () => {
    const state = live.sale ?? show;
    const left = live.seats.size ? live.counts().AVAILABLE : show.available_seats;
    let text = "";
    if (state.sales === "upcoming") text = `On sale at ${when(state.sales_open_at)}`;
    else if (left === 0) text = "Sold out";
    else if (state.sales === "closed") text = "Sales closed";
    sale.textContent = text;
    sale.hidden = !text;
    sale.dataset.sales = text === "Sold out" ? "sold-out" : state.sales;
  };
  renderSale();
  live.addEventListener("sale", renderSale);
  // The waiting room's length and pace, from the show's shared progress frames.
  const queueInfo = panel.querySelector(".queue-info");
  live.addEventListener("queue", (e) => {
    const p = e.detail;
    if (p.type !== "queue_progress") return;
    const pace = p.paused ? "admissions paused" : `${p.admit_per_minute.toLocaleString()} let in per minute`;
    queueInfo.textContent = `Queue: ${p.waiting.toLocaleString()} waiting · ${pace}`;
    queueInfo.hidden = false;
  });
  live.addEventListener("state", (e) => {
    panel.classList.toggle("reconnecting", e.detail !== "live");
    const state = panel.querySelector(".state");
    state.className = `state ${e.detail}`;
    state.textContent = e.detail === "live" ? "Live" : "Reconnecting…";
  });
  live.addEventListener("change", (e) => {
    map.upsert(e.detail, (n) => live.seats.get(n));
    const counts = live.counts();
    for (const status of ["AVAILABLE", "RESERVED", "BOOKED"]) panel.querySelector(`[data-count="${status}"]`).textContent = counts[status];
    const left = new Map();
    for (const seat of live.seats.values()) if (seat.status === "AVAILABLE") left.set(seat.category, (left.get(seat.category) ?? 0) + 1);
    for (const c of show.categories) {
      const tile = tiles.querySelector(`[data-category="${CSS.escape(c.key)}"]`);
      const n = left.get(c.key) ?? 0;
      tile.querySelector("strong").textContent = n;
      tile.querySelector(".bar i").style.width = `${c.total_seats ? (100 * n) / c.total_seats : 0}%`;
      tile.classList.toggle("sold-out", n === 0);
    }
    renderSale();
    if (live.lastChange) panel.querySelector(".last").textContent = `Last change ${live.lastChange.toLocaleTimeString()}`;
  });
}
