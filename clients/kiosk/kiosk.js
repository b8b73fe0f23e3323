// A read-only availability display for lobby screens: /kiosk?show=1 or /kiosk?show=1,2.
// It keeps nothing but the current seat map per show, so it can run for days; the
// connection reconnects by itself (LiveShow), and the screen says when it is doing so.
import { LiveShow } from "/assets/live.js";

const root = document.getElementById("shows");
const ids = (new URLSearchParams(location.search).get("show") ?? "1")
  .split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);

for (const id of ids) {
  const panel = document.createElement("section");
  panel.className = "show connecting";
  panel.dataset.show = id;
  panel.innerHTML = `<h1>Show ${id}</h1>
    <div class="counts">
      <div class="count free"><strong data-count="AVAILABLE">–</strong><span>available</span></div>
      <div class="count held"><strong data-count="RESERVED">–</strong><span>held</span></div>
      <div class="count sold"><strong data-count="BOOKED">–</strong><span>sold</span></div>
    </div>
    <div class="heat" aria-hidden="true"></div>
    <div class="footer"><span class="state connecting">Connecting…</span><span class="last">No changes yet</span></div>`;
  root.append(panel);
  fetch(`/shows/${id}`).then((r) => r.json()).then((b) => {
    if (b.show) panel.querySelector("h1").textContent = b.show.name;
  }).catch(() => {});

  const live = new LiveShow(id);
  const heat = panel.querySelector(".heat");
  const cells = new Map();
  live.addEventListener("state", (e) => {
    panel.classList.toggle("reconnecting", e.detail !== "live");
    const state = panel.querySelector(".state");
    state.className = `state ${e.detail}`;
    state.textContent = e.detail === "live" ? "Live" : "Reconnecting…";
  });
  live.addEventListener("change", (e) => {
    const seatNos = cells.size === live.order.length ? e.detail : live.order;
    for (const seatNo of seatNos) {
      let cell = cells.get(seatNo);
      if (!cell) {
        cell = document.createElement("i");
        cells.set(seatNo, cell);
        heat.append(cell);
      }
      cell.dataset.s = live.seats.get(seatNo)?.status ?? "AVAILABLE";
    }
    const counts = live.counts();
    for (const [status, n] of Object.entries(counts)) panel.querySelector(`[data-count="${status}"]`).textContent = n;
    if (live.lastChange) panel.querySelector(".last").textContent = `Last change ${live.lastChange.toLocaleTimeString()}`;
  });
}
