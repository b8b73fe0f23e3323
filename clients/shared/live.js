// A live seat map of one show over boxoffice's WebSocket protocol (docs/PROTOCOL.md).
//
// The map follows the protocol's one rule: per seat, keep the entry with the highest
// version. Snapshots and changes are applied the same way, so order and repetition do
// not matter. A reconnect starts over from the new session's snapshot, or, for a map
// that has the layout, resumes: it receives only the blocks that changed meanwhile.

export class LiveShow extends EventTarget {
  /**
   * `token`: a buyer's JWT, for servers with AUTH=jwt (sent in an `auth` message).
   * `layout`: the show's static layout (GET /shows/:id/layout); with it the session
   * asks for compact `state` frames instead of full snapshots.
   * `watch`: a display that only watches; it takes no place in a waiting room.
   */
  constructor(showId, { token, layout, watch } = {}) {
    super();
    // A display that only watches (the kiosk): it takes no place in a waiting room.
    this.watch = watch;
    this.showId = showId;
    this.token = token;
    this.layout = layout;
    this.seats = new Map(); // seat_no -> {seat_no, status, version, and its place: row, x, y, ...}
    this.order = []; // seat numbers, in the order they first arrived
    this.state = "connecting";
    // Where the sale is: {sales: "upcoming" | "open" | "closed", sales_open_at, sales_close_at}.
    this.sale = null;
    // The waiting room, for a show that has one: this session's place (`queue`
    // frames), the show's progress (`queue_progress`) and the admission once let in.
    this.queue = null;
    this.progress = null;
    this.admission = null;
    this.lastChange = null;
    this.pending = new Map(); // request_id -> {resolve, reject}
    this.nextRequest = 1;
    this.backoff = 500;
    this.closed = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let view = "";
    if (this.layout) {
      // Coming back with a whole map, say what it is: the server then sends only
      // the blocks that changed meanwhile (docs/PROTOCOL.md, "Resuming").
      const have = this.digest();
      // Runs: a hall whose seats are alike (every one free at the opening) is a few
      // bytes instead of three per seat.
      view = have ? `?snapshot=state&runs=true&have=${have}` : "?snapshot=state&runs=true";
    }
    // The queue id this browser was given (AUTH=none) keeps its place in any
    // show's waiting room across reloads and reconnections.
    const queueId = storedQueueId();
    if (this.watch) view += `${view ? "&" : "?"}watch=true`;
    else if (queueId) view += `${view ? "&" : "?"}queue_id=${encodeURIComponent(queueId)}`;
    const ws = new WebSocket(`${scheme}://${location.host}/shows/${this.showId}/ws${view}`);
    this.ws = ws;
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    // Sign the session in before anything else is sent on it; the server handles a
    // session's frames in order, so later commands act for this buyer.
    ws.onopen = () => {
      if (this.token) ws.send(JSON.stringify({ type: "auth", request_id: "auth", token: this.token }));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      for (const { reject } of this.pending.values()) reject(new Error("connection lost"));
      this.pending.clear();
      if (this.closed) return;
      this.setState("reconnecting");
      // Exponential backoff with jitter, at most 10 s between attempts.
      const wait = this.backoff * (0.5 + Math.random());
      this.backoff = Math.min(this.backoff * 2, 10000);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  receive(msg) {
    // The first part of a snapshot says where the sale is; sales_* frames say when
    // that changes (the instant it opens or closes, or an organiser's change).
    if (msg.sales && (msg.type === "state" || msg.type === "snapshot" || msg.type.startsWith("sales_"))) {
      this.sale = { sales: msg.sales, sales_open_at: msg.sales_open_at, sales_close_at: msg.sales_close_at };
      this.dispatchEvent(new CustomEvent("sale", { detail: this.sale }));
      if (msg.type.startsWith("sales_")) return;
    }
    if (msg.type === "queue" || msg.type === "queue_progress" || msg.type === "admitted") {
      if (msg.type === "queue") {
        if (msg.queue_id) storeQueueId(msg.queue_id);
        this.queue = msg;
        if (msg.state !== "admitted") this.admission = null;
      } else if (msg.type === "queue_progress") {
        this.progress = msg;
      } else {
        this.admission = { token: msg.admission_token, expires_at: msg.expires_at };
      }
      this.dispatchEvent(new CustomEvent("queue", { detail: msg }));
      return;
    }
    if (msg.type === "state") msg = { ...msg, type: "snapshot", seats: this.expand(msg) };
    if (msg.type === "snapshot" || msg.type === "seats_changed") {
      if (msg.type === "snapshot") {
        this.backoff = 500;
        // A large show's snapshot comes in parts; the map is whole after the last.
        if ((msg.part ?? 1) >= (msg.parts ?? 1)) this.setState("live");
      }
      const changed = [];
      for (const seat of msg.seats) {
        const known = this.seats.get(seat.seat_no);
        if (!known) this.order.push(seat.seat_no);
        if (!known || seat.version > known.version) {
          // Changes carry status and version only; the seat's place stays.
          this.seats.set(seat.seat_no, known ? { ...known, ...seat } : seat);
          changed.push(seat.seat_no);
        }
      }
      if (msg.type === "seats_changed" && changed.length) this.lastChange = new Date();
      if (changed.length) this.dispatchEvent(new CustomEvent("change", { detail: changed }));
      return;
    }
    if (msg.request_id === "auth" && msg.type === "error") {
      this.dispatchEvent(new CustomEvent("auth-error", { detail: msg.error }));
      return;
    }
    const waiting = this.pending.get(msg.request_id);
    if (waiting) {
      this.pending.delete(msg.request_id);
      waiting.resolve(msg);
    }
  }

  /** A `state` frame's seats as snapshot seats, their places from the layout. */
  expand(msg) {
    const fields = this.layout.seat_fields;
    const status = msg.status_runs !== undefined ? unrunLetters(msg.status_runs) : msg.status;
    const versions = msg.version_runs !== undefined ? unrunNumbers(msg.version_runs) : msg.versions;
    const seats = [];
    for (let i = 0; i < status.length; i += 1) {
      const place = this.layout.seats[msg.offset + i];
      if (!place) continue;
      const seat = Object.fromEntries(fields.map((f, k) => [f, place[k]]));
      seat.status = STATE_LETTERS[status[i]] ?? "AVAILABLE";
      seat.version = versions[i];
      seats.push(seat);
    }
    return seats;
  }

  /**
   * The digest of a complete map: for each block of 100 seats in layout order, the
   * sum of their versions. `null` until every seat of the layout is known.
   */
  digest() {
    const places = this.layout.seats;
    if (this.seats.size < places.length) return null;
    const sums = [];
    for (let i = 0; i < places.length; i += 1) {
      const seat = this.seats.get(places[i][0]);
      if (!seat) return null;
      if (i % DIGEST_BLOCK === 0) sums.push(0);
      sums[sums.length - 1] += seat.version;
    }
    return sums.join(",");
  }

  /** Sends a command; resolves with its reply (which may be an `error` frame). */
  request(command) {
    if (this.state !== "live") return Promise.reject(new Error("not connected"));
    const request_id = `r${this.nextRequest++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(request_id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...command, request_id }));
    });
  }

  /** Resolves once the map is live (a snapshot arrived), or rejects after `ms`. */
  whenLive(ms = 10000) {
    if (this.state === "live") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onState = () => {
        if (this.state === "live") finish(resolve);
      };
      const finish = (settle) => {
        clearTimeout(timer);
        this.removeEventListener("state", onState);
        settle();
      };
      const timer = setTimeout(() => finish(() => reject(new Error("not live"))), ms);
      this.addEventListener("state", onState);
    });
  }

  counts() {
    const counts = { AVAILABLE: 0, RESERVED: 0, BOOKED: 0, BLOCKED: 0 };
    for (const seat of this.seats.values()) counts[seat.status] = (counts[seat.status] ?? 0) + 1;
    return counts;
  }

  /** Resolves once `test(seat)` holds for every listed seat, or after `ms`. */
  waitFor(seatNos, test, ms = 1000) {
    const done = () => seatNos.every((n) => this.seats.has(n) && test(this.seats.get(n)));
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onChange = () => {
        if (done()) finish(true);
      };
      const finish = (ok) => {
        clearTimeout(timer);
        this.removeEventListener("change", onChange);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), ms);
      this.addEventListener("change", onChange);
    });
  }
}

const QUEUE_ID_KEY = "boxoffice.queue_id";
function storedQueueId() {
  try { return localStorage.getItem(QUEUE_ID_KEY); } catch { return null; }
}
function storeQueueId(id) {
  try { localStorage.setItem(QUEUE_ID_KEY, id); } catch { /* private mode: the place lasts the page */ }
}

/** "A3R1" as "AAAR" (docs/PROTOCOL.md, `state` in runs). */
function unrunLetters(runs) {
  let out = "";
  for (const [, letter, n] of runs.matchAll(/([A-Z])(\d+)/g)) out += letter.repeat(Number(n));
  return out;
}

/** [0, 3, 1, 1] as [0, 0, 0, 1]. */
function unrunNumbers(runs) {
  const out = [];
  for (let i = 0; i + 1 < runs.length; i += 2) for (let k = 0; k < runs[i + 1]; k += 1) out.push(runs[i]);
  return out;
}

/** Seats per block of a resume digest (docs/PROTOCOL.md). */
const DIGEST_BLOCK = 100;

const STATE_LETTERS = { A: "AVAILABLE", R: "RESERVED", B: "BOOKED", X: "BLOCKED" };

export const STATUS_TEXT = { AVAILABLE: "available", RESERVED: "held", BOOKED: "sold", BLOCKED: "not for sale" };
