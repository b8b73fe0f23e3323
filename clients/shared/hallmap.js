// A drawing of a hall: one SVG with the stage, section names, row labels and every
// seat at its place (seats carry grid coordinates, see docs/PROTOCOL.md). A seat is
// a <g> with a square and an icon; its status is shown by fill AND by icon or
// pattern (sold ✕, held stripes, selected ✓, yours ★, not for sale dashed), so it
// never depends on colour alone. Thousands of seats cost one element tree, not
// thousands of buttons: the SVG is a single tab stop, and the arrow keys move
// through a row and from row to row (announced via aria-activedescendant).

const NS = "http://www.w3.org/2000/svg";
const U = 24; // one grid unit
const SEAT = 20;

const STATUS_TEXT = { AVAILABLE: "available", RESERVED: "held by someone", BOOKED: "sold", BLOCKED: "not for sale" };

const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

const DEFS = `
  <pattern id="p-held" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
    <rect width="6" height="6" fill="#fde7c8"/><rect width="3" height="6" fill="#8a4b00"/>
  </pattern>
  <symbol id="i-sold" viewBox="0 0 20 20"><path d="M5 5L15 15M15 5L5 15" stroke="#fff" stroke-width="3" stroke-linecap="round"/></symbol>
  <symbol id="i-selected" viewBox="0 0 20 20"><path d="M4.5 10.5l3.5 3.5 7.5-8" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></symbol>
  <symbol id="i-mine" viewBox="0 0 20 20"><path d="M10 2.5l2.2 4.8 5.2.5-3.9 3.5 1.1 5.1L10 13.8l-4.6 2.6 1.1-5.1L2.6 7.8l5.2-.5z" fill="#ffd54f"/></symbol>
  <symbol id="i-accessible" viewBox="0 0 20 20"><circle cx="10" cy="5" r="2" fill="#fff"/><path d="M10 8v5h4l2 4M10 10h-3" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/></symbol>`;

export class HallMap {
  /**
   * `show`: the show as GET /shows/:id returns it (stage, sections, categories,
   * width, height). `state(seat)` says how this page sees a seat:
   * {selected, mine}. `onToggle(seatNo)` is called on click, Space or Enter.
   */
  constructor(show, { state = () => ({}), onToggle = () => {}, label = "Seat map", readonly = false }) {
    this.show = show;
    this.state = state;
    this.onToggle = onToggle;
    this.seats = new Map(); // seat_no -> {node, seat}
    this.rows = []; // [[seat_no, ...] left to right], front to back
    this.rowOf = new Map(); // seat_no -> [row index, index in row]
    this.categories = new Map(show.categories.map((c) => [c.key, c]));
    this.cursor = null;

    const stage = show.stage ?? { label: "Stage", at: "top" };
    const [w, h] = [Math.max(show.width, 1), Math.max(show.height, 1)];
    // Room around the seats: row labels left and right, the stage on its side.
    const pad = { top: 1.5, bottom: 1, left: 2, right: 2 };
    pad[stage.at] += 2.5;
    const box = [-pad.left * U, -pad.top * U, (w + pad.left + pad.right) * U, (h + pad.top + pad.bottom) * U];
    this.svg = svgEl("svg", readonly
      ? { viewBox: box.join(" "), class: "hall readonly", role: "img", "aria-label": label }
      : {
        viewBox: box.join(" "), class: "hall", tabindex: "0", role: "application",
        "aria-roledescription": "seat map",
        "aria-label": `${label}. Arrow keys move between seats and rows, Space or Enter selects.`,
      });
    this.svg.style.setProperty("--min-width", `${Math.min(box[2] / U * 14, 4000)}px`);
    this.svg.innerHTML = `<defs>${DEFS}</defs>`;
    this.svg.append(this.drawStage(stage, w, h), this.drawLabels());
    this.layer = svgEl("g", { class: "seats" });
    this.ring = svgEl("rect", { class: "cursor", width: SEAT + 6, height: SEAT + 6, rx: 7, visibility: "hidden" });
    this.svg.append(this.layer, this.ring);
    this.element = document.createElement("div");
    this.element.className = "hall-scroll";
    this.element.append(this.svg);

    if (readonly) return;
    this.svg.addEventListener("click", (e) => {
      const g = e.target.closest?.("[data-seat]");
      if (!g) return;
      this.moveTo(g.dataset.seat, false);
      this.onToggle(g.dataset.seat);
    });
    this.svg.addEventListener("keydown", (e) => this.key(e));
    // Focus from the keyboard shows the cursor (and scrolls to it); focus from a
    // click must not scroll, or the seat moves away between press and release.
    this.svg.addEventListener("pointerdown", () => { this.pointing = true; });
    this.svg.addEventListener("pointerup", () => { this.pointing = false; });
    this.svg.addEventListener("focus", () => {
      if (this.pointing) return;
      if (!this.cursor && this.rows.length) this.moveTo(this.firstFree() ?? this.rows[0][0]);
      else if (this.cursor) this.moveTo(this.cursor);
    });
    this.svg.addEventListener("blur", () => this.ring.setAttribute("visibility", "hidden"));
  }

  drawStage(stage, w, h) {
    const g = svgEl("g", { class: "stage" });
    const horizontal = stage.at === "top" || stage.at === "bottom";
    const [sw, sh] = horizontal ? [Math.max(w * 0.6, 4) * U, 1.4 * U] : [1.4 * U, Math.max(h * 0.6, 4) * U];
    const x = horizontal ? (w * U - sw) / 2 : stage.at === "left" ? -3.8 * U : (w + 2.4) * U;
    const y = !horizontal ? (h * U - sh) / 2 : stage.at === "top" ? -3.6 * U : (h + 1.6) * U;
    const text = svgEl("text", { x: x + sw / 2, y: y + sh / 2, "text-anchor": "middle", "dominant-baseline": "central" });
    if (!horizontal) text.setAttribute("transform", `rotate(-90 ${x + sw / 2} ${y + sh / 2})`);
    text.textContent = stage.label;
    g.append(svgEl("rect", { x, y, width: sw, height: sh, rx: 6 }), text);
    return g;
  }

  drawLabels() {
    const g = svgEl("g", { class: "labels", "aria-hidden": "true" });
    for (const section of this.show.sections ?? []) {
      if (!section.rows.length) continue;
      const top = Math.min(...section.rows.map((r) => r.y));
      const left = Math.min(...section.rows.map((r) => r.x_min));
      const right = Math.max(...section.rows.map((r) => r.x_max));
      if ((this.show.sections ?? []).length > 1) {
        const name = svgEl("text", { class: "section-name", x: ((left + right + 1) / 2) * U, y: (top - 0.35) * U, "text-anchor": "middle" });
        name.textContent = section.name;
        g.append(name);
      }
      for (const row of section.rows) {
        for (const [x, anchor] of [[row.x_min - 0.4, "end"], [row.x_max + 1.4, "start"]]) {
          const t = svgEl("text", { class: "row-label", x: x * U, y: (row.y + 0.5) * U, "text-anchor": anchor, "dominant-baseline": "central" });
          t.textContent = row.label;
          g.append(t);
        }
      }
    }
    return g;
  }

  /** Draws seats not drawn yet and redraws the others. */
  upsert(seatNos, lookup) {
    let added = false;
    for (const seatNo of seatNos) {
      const seat = lookup(seatNo);
      if (!seat) continue;
      let entry = this.seats.get(seatNo);
      if (!entry) {
        const node = svgEl("g", {
          class: "seat", id: `seat-${this.seats.size}`, role: "button", "data-seat": seatNo,
          transform: `translate(${seat.x * U + (U - SEAT) / 2} ${seat.y * U + (U - SEAT) / 2})`,
        });
        const color = this.categories.get(seat.category)?.color ?? "#2f6fdf";
        node.style.setProperty("--c", color);
        node.append(svgEl("rect", { width: SEAT, height: SEAT, rx: 5 }), svgEl("use", { width: SEAT, height: SEAT }));
        const title = svgEl("title");
        node.append(title);
        entry = { node, seat };
        this.seats.set(seatNo, entry);
        this.layer.append(node);
        added = true;
      }
      entry.seat = seat;
      this.paint(seatNo);
    }
    if (added) this.indexRows();
  }

  /** Redraws one seat from its status and this page's view of it. */
  paint(seatNo) {
    const entry = this.seats.get(seatNo);
    if (!entry) return;
    const { node, seat } = entry;
    const { selected, mine } = this.state(seat);
    node.dataset.status = seat.status;
    node.classList.toggle("selected", !!selected);
    node.classList.toggle("mine", !!mine);
    const icon = selected ? "selected" : mine ? "mine" : seat.status === "BOOKED" ? "sold"
      : seat.status === "AVAILABLE" && seat.accessible ? "accessible" : "";
    const use = node.querySelector("use");
    if (icon) use.setAttribute("href", `#i-${icon}`); else use.removeAttribute("href");
    const label = this.describe(seat, selected, mine);
    node.setAttribute("aria-label", label);
    node.setAttribute("aria-pressed", selected ? "true" : "false");
    node.setAttribute("aria-disabled", seat.status === "AVAILABLE" ? "false" : "true");
    node.querySelector("title").textContent = label;
  }

  describe(seat, selected, mine) {
    const category = this.categories.get(seat.category);
    const price = category ? `, ${category.name} ${formatMoney(category.price, category.currency)}` : "";
    const state = selected ? "selected" : mine ? `yours (${seat.status === "BOOKED" ? "booked" : "held"})` : STATUS_TEXT[seat.status] ?? seat.status;
    const accessible = seat.accessible ? ", wheelchair accessible" : "";
    return `Row ${seat.row}, seat ${seat.number}${price}${accessible}: ${state}`;
  }

  /** Rows front to back (by y, then x), each left to right: the keyboard's order. */
  indexRows() {
    const groups = new Map();
    for (const { seat } of this.seats.values()) {
      const key = `${seat.section}\u0000${seat.row}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(seat);
    }
    this.rows = [...groups.values()]
      .map((row) => row.sort((a, b) => a.x - b.x))
      .sort((a, b) => a[0].y - b[0].y || a[0].x - b[0].x)
      .map((row) => row.map((s) => s.seat_no));
    this.rowOf.clear();
    this.rows.forEach((row, r) => row.forEach((n, i) => this.rowOf.set(n, [r, i])));
  }

  firstFree() {
    for (const row of this.rows) for (const n of row) if (this.seats.get(n).seat.status === "AVAILABLE") return n;
    return null;
  }

  moveTo(seatNo, show = true) {
    const entry = this.seats.get(seatNo);
    if (!entry) return;
    this.cursor = seatNo;
    this.svg.setAttribute("aria-activedescendant", entry.node.id);
    const { x, y } = entry.seat;
    this.ring.setAttribute("x", x * U + (U - SEAT) / 2 - 3);
    this.ring.setAttribute("y", y * U + (U - SEAT) / 2 - 3);
    this.ring.setAttribute("visibility", show && document.activeElement === this.svg ? "visible" : "hidden");
    if (show) entry.node.scrollIntoView?.({ block: "nearest", inline: "nearest" });
  }

  key(e) {
    if (!this.cursor) return;
    const [r, i] = this.rowOf.get(this.cursor) ?? [0, 0];
    const row = this.rows[r];
    const nearest = (other) => {
      const x = this.seats.get(this.cursor).seat.x;
      return other.reduce((best, n) =>
        Math.abs(this.seats.get(n).seat.x - x) < Math.abs(this.seats.get(best).seat.x - x) ? n : best);
    };
    let next;
    switch (e.key) {
      case "ArrowRight": next = row[Math.min(i + 1, row.length - 1)]; break;
      case "ArrowLeft": next = row[Math.max(i - 1, 0)]; break;
      case "ArrowDown": next = r + 1 < this.rows.length ? nearest(this.rows[r + 1]) : this.cursor; break;
      case "ArrowUp": next = r > 0 ? nearest(this.rows[r - 1]) : this.cursor; break;
      case "Home": next = row[0]; break;
      case "End": next = row[row.length - 1]; break;
      case " ": case "Enter":
        e.preventDefault();
        this.onToggle(this.cursor);
        return;
      default: return;
    }
    e.preventDefault();
    this.moveTo(next);
  }
}

/** "89.00" EUR -> "€89.00", in the reader's locale. */
export function formatMoney(amount, currency) {
  if (!currency) return amount;
  const [, fraction = ""] = String(amount).split(".");
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: fraction.length, maximumFractionDigits: 3 })
      .format(Number(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

/** Adds decimal strings exactly: ["89.00", "45.50"] -> "134.50". */
export function addMoney(amounts) {
  let thousandths = 0;
  let decimals = 0;
  for (const a of amounts) {
    const [whole, fraction = ""] = String(a).split(".");
    decimals = Math.max(decimals, fraction.length);
    thousandths += Number(whole) * 1000 + Number(fraction.padEnd(3, "0"));
  }
  const whole = Math.floor(thousandths / 1000);
  const fraction = String(thousandths % 1000).padStart(3, "0").slice(0, decimals);
  return decimals ? `${whole}.${fraction}` : String(whole);
}

/** "Stalls row A: 12, 13, 14" for booked seats ({section, row, number}). */
export function describeSeats(seats, sections = []) {
  const names = new Map(sections.map((s) => [s.key, s.name]));
  const groups = new Map();
  for (const s of seats) {
    const key = `${names.get(s.section) ?? s.section} row ${s.row}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(s.number);
  }
  const many = sections.length > 1;
  return [...groups.entries()]
    .map(([key, numbers]) => `${many ? key : key.replace(/^.* row/, "Row")}: ${numbers.join(", ")}`)
    .join("; ");
}
