// The seat map and the kiosk, used as a person would, in a real headless Chromium
// against a real boxoffice (and its real PostgreSQL). Screenshots for the README
// come from `npm run screenshots` (screenshots.mjs), never from a test run.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ADMIN_TOKEN, SMALL_HALL, Server, browser } from "./harness.mjs";

let server, chrome;

before(async () => {
  server = await Server.start();
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
  await server?.close();
});

async function openShow(show, viewport = { width: 1000, height: 900 }) {
  // Each page is a browser context of its own: another buyer, with another storage.
  const page = await chrome.newPage({ viewport });
  await page.goto(`${server.url}/#/shows/${show}`);
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  return page;
}
const seat = (page, n) => page.locator(`.seat[data-seat="${n}"]`);
const status = (page, n, s) => seat(page, n).and(page.locator(`[data-status="${s}"]`));

test("the hall is drawn with its stage, rows, aisle and prices", async () => {
  const show = await server.createHall("Drawn hall");
  const page = await chrome.newPage({ viewport: { width: 1000, height: 900 } });
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  const layouts = [];
  page.on("response", (r) => { if (r.url().endsWith("/layout")) layouts.push(r.status()); });
  await page.goto(`${server.url}/#/shows/${show}`);
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  assert.deepEqual(layouts, [200], "the layout is fetched once");
  assert.match(sockets[0], /\?snapshot=state&runs=true$/, "the socket sends live state only, in runs");
  await page.locator(".stage text", { hasText: "Stage" }).waitFor();
  const rows = await page.locator(".row-label").allTextContents();
  assert.deepEqual([...new Set(rows)], ["A", "B", "C"]);
  assert.match(await page.locator(".legend").textContent(), /Premium €89\.00.*Standard €45\.50/);
  assert.match(await page.locator(".when").textContent(), /2030/, "the show's date is on its page");
  // The aisle: seats 4 and 5 of row A are two places apart, 3 and 4 one.
  const x = async (n) => (await seat(page, n).boundingBox()).x;
  const [a3, a4, a5] = [await x("s-A-3"), await x("s-A-4"), await x("s-A-5")];
  assert.ok(a5 - a4 > 1.8 * (a4 - a3), `aisle: ${a3} ${a4} ${a5}`);
  assert.equal(await page.locator(".seat").count(), 20, "one SVG group per seat, no buttons");
  assert.equal(await page.locator(".hall button").count(), 0);
  assert.match(await seat(page, "s-C-1").getAttribute("aria-label"), /Row C, seat 1, Standard €45\.50, wheelchair accessible: available/);
  await page.close();
});

test("selected seats show their total price, and the limit per booking holds", async () => {
  const show = await server.createHall("Prices");
  const page = await openShow(show);
  await seat(page, "s-A-1").click();
  await seat(page, "s-B-1").click();
  await page.locator("#selection", { hasText: "2 seats · €134.50" }).waitFor();
  await page.click("#book");
  await page.locator("#receipt-total", { hasText: "€134.50" }).waitFor();
  assert.match(await page.locator("#reference").textContent(), /^#\d+$/);
  assert.match(await page.locator("#receipt-seats").textContent(), /Row A: 1; Row B: 1/);
  await page.locator("#my-bookings .booking", { hasText: "Booked" }).waitFor();
  await page.close();

  const limited = await Server.start({ MAX_SEATS_PER_BOOKING: "2" });
  try {
    const other = await limited.createHall("Limited");
    const p = await chrome.newPage();
    await p.goto(`${limited.url}/#/shows/${other}`);
    await p.locator("#connection", { hasText: "Live" }).waitFor();
    for (const n of ["s-B-1", "s-B-2", "s-B-3"]) await seat(p, n).click();
    await p.locator("#message", { hasText: "At most 2 seats per booking" }).waitFor();
    assert.equal(await seat(p, "s-B-3").getAttribute("aria-pressed"), "false");
    await p.close();
  } finally {
    await limited.close();
  }
});

test("the best seats can be asked for from the page and are marked as yours", async () => {
  const show = await server.createHall("Best");
  const [page, other] = [await openShow(show), await openShow(show)];
  await page.fill("#best-count", "2");
  await page.selectOption("#best-category", "A");
  await page.click("#best");
  await page.locator("#receipt", { hasText: "Held for you" }).waitFor();
  assert.equal(await page.locator("#receipt-total").textContent(), "€178.00");
  // Row A is 4 + 4 around an aisle: the best pair is in its middle on one side.
  const mine = await page.locator(".seat.mine").evaluateAll((gs) => gs.map((g) => g.dataset.seat));
  assert.equal(mine.length, 2, `${mine}`);
  assert.ok(mine.every((n) => n.startsWith("s-A-")), `${mine}`);
  // Another buyer sees them held, not as theirs.
  for (const n of mine) {
    await status(other, n, "RESERVED").waitFor({ timeout: 2000 });
    assert.equal(await seat(other, n).getAttribute("class"), "seat");
  }
  assert.match(await seat(page, mine[0]).getAttribute("aria-label"), /yours \(held\)/);
  await page.close();
  await other.close();
});

test("a selected seat taken by another page is deselected, with a message", async () => {
  const show = await server.createShow("Deselect", 20);
  const [a, b] = [await openShow(show), await openShow(show)];
  await seat(a, "5").click();
  await seat(a, "6").click();
  assert.equal(await seat(a, "5").getAttribute("aria-pressed"), "true");
  await seat(b, "5").click();
  await b.click("#book");
  await a.locator("#message", { hasText: "row A seat 5 was just taken by someone else and is no longer selected" }).waitFor({ timeout: 2000 });
  assert.equal(await seat(a, "5").getAttribute("aria-pressed"), "false");
  assert.equal(await seat(a, "6").getAttribute("aria-pressed"), "true", "the other seat stays selected");
  await a.locator("#selection", { hasText: "1 seat" }).waitFor();
  assert.match(await seat(a, "5").getAttribute("aria-label"), /sold/);
  await a.close();
  await b.close();
});

test("a hold counts down in My bookings, and when it runs out both pages show the seat free", async () => {
  const show = await server.createShow("Holds", 10);
  const [a, b] = [await openShow(show), await openShow(show)];
  await seat(a, "3").click();
  await a.click("#hold");
  const entry = a.locator("#my-bookings .booking");
  await entry.locator(".countdown").waitFor();
  assert.match(await entry.locator(".countdown").textContent(), /expires in 0:0[1-3]$/);
  await status(b, "3", "RESERVED").waitFor({ timeout: 1000 });
  assert.equal(await seat(a, "3").getAttribute("class"), "seat mine", "your own hold is marked as yours");
  // HOLD_TTL_SECS is 3 in these tests: the hold expires within TTL + 1 s.
  for (const page of [a, b]) await status(page, "3", "AVAILABLE").waitFor({ timeout: 5000 });
  await entry.locator(".status", { hasText: "Expired" }).waitFor();
  assert.equal(await seat(a, "3").getAttribute("class"), "seat");
  await a.close();
  await b.close();
});

test("a hold survives a reload and can be confirmed from My bookings", async () => {
  const show = await server.createShow("Reload", 10);
  const page = await openShow(show);
  await seat(page, "4").click();
  await page.click("#hold");
  await page.locator("#my-bookings .confirm").waitFor();
  await page.reload();
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  assert.equal(await seat(page, "4").getAttribute("class"), "seat mine");
  await page.locator("#my-bookings .confirm").click();
  await page.locator("#message", { hasText: "is confirmed" }).waitFor();
  await status(page, "4", "BOOKED").waitFor();
  await page.locator("#my-bookings .status", { hasText: "Booked" }).waitFor();
  await page.goto(`${server.url}/#/bookings`);
  await page.locator("#my-bookings .booking", { hasText: "Reload" }).waitFor();
  await page.close();
});

test("seats can be chosen with the keyboard, row by row, on a phone-sized screen", async () => {
  const show = await server.createShow("Keyboard", 240);
  const page = await openShow(show, { width: 390, height: 844 });
  await page.locator(".hall").focus();
  await page.keyboard.press("Space");
  assert.equal(await seat(page, "1").getAttribute("aria-pressed"), "true", "focus starts on the first free seat");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Enter");
  assert.equal(await seat(page, "2").getAttribute("aria-pressed"), "true");
  await page.keyboard.press("ArrowDown");
  const active = await page.locator(".hall").getAttribute("aria-activedescendant");
  assert.match(await page.locator(`#${active}`).getAttribute("aria-label"), /^Row B, seat 2/, "down moves to the next row");
  // The page never scrolls sideways (a wide hall scrolls in its own box), and the
  // action bar is on screen without scrolling.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  const bar = await page.locator("#book").boundingBox();
  assert.ok(bar && bar.y + bar.height <= 844, `the Book button is at ${JSON.stringify(bar)}`);
  await page.locator("#selection", { hasText: "2 seats" }).waitFor();
  await page.close();
});

test("in a hall wider than the screen, a click selects the seat under the pointer", async () => {
  // 2,500 seats make rows of 71: the drawing scrolls sideways in its own box.
  const show = await server.createShow("Wide", 2500);
  const page = await openShow(show, { width: 800, height: 900 });
  await seat(page, "2500").waitFor();
  await seat(page, "71").click();
  assert.equal(await seat(page, "71").getAttribute("aria-pressed"), "true");
  await page.locator("#selection", { hasText: "1 seat" }).waitFor();
  await page.close();
});

test("a conflict is explained in place, with the map already right", async () => {
  const show = await server.createShow("Conflict", 10);
  const page = await chrome.newPage();
  // Hold back this page's seat updates, so that it still offers seat 5 after someone
  // else has bought it.
  let frozen = false;
  let toPage;
  const held = [];
  await page.routeWebSocket(/\/ws(\?.*)?$/, (ws) => {
    toPage = ws;
    const upstream = ws.connectToServer();
    upstream.onMessage((m) => {
      if (frozen && m.includes("seats_changed")) held.push(m);
      else ws.send(m);
    });
    ws.onMessage((m) => upstream.send(m));
  });
  await page.goto(`${server.url}/#/shows/${show}`);
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  await seat(page, "5").click();
  frozen = true;
  const { status: code } = await server.api(`/shows/${show}/book`, { seat_nos: ["5"], user_id: "someone-else" });
  assert.equal(code, 201);
  await page.click("#book");
  // Release the held updates a moment later; the message must wait for them.
  setTimeout(() => {
    frozen = false;
    for (const m of held.splice(0)) toPage.send(m);
  }, 300);
  await page.locator("#message", { hasText: "Seat row A seat 5 was just taken" }).waitFor({ timeout: 3000 });
  assert.equal(await seat(page, "5").getAttribute("data-status"), "BOOKED", "the map is right when the message shows");
  await page.close();
});

test("an unknown show gets a not-found page", async () => {
  const page = await chrome.newPage();
  await page.goto(`${server.url}/#/shows/987654`);
  await page.locator("#not-found h1", { hasText: "Show not found" }).waitFor();
  assert.match(await page.locator("#not-found").textContent(), /no show 987654/);
  assert.equal(await page.locator(".hall").count(), 0);
  await page.close();
});

test("the admin view creates a show that then appears in the list", async () => {
  const page = await chrome.newPage();
  await page.goto(`${server.url}/#/admin`);
  await page.fill("#token", ADMIN_TOKEN);
  await page.fill("#name", "Made in the browser");
  await page.fill("#start", "2030-06-01T19:30");
  await page.fill("#seats", "12");
  await page.click("#create-show button[type=submit]");
  await page.locator("#admin-result", { hasText: "Created" }).waitFor();
  await page.goto(`${server.url}/#/`);
  await page.locator("td a", { hasText: "Made in the browser" }).waitFor();
  const row = page.locator("tr", { hasText: "Made in the browser" });
  assert.match(await row.textContent(), /12 of 12 available/);
  await page.close();
});

test("before the sale opens the map counts down, and booking turns on at the instant", async () => {
  const opens = new Date(Date.now() + 5000).toISOString();
  const show = await server.createHall("Friday on-sale", SMALL_HALL, { sales_open_at: opens });
  const page = await openShow(show);
  const kiosk = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await kiosk.goto(`${server.url}/kiosk?show=${show}`);
  await kiosk.locator(".sale", { hasText: "On sale at" }).waitFor();
  await page.locator("#sale", { hasText: /On sale in 0:0\d/ }).waitFor();
  await seat(page, "s-A-1").click();
  await page.locator("#selection", { hasText: "1 seat" }).waitFor();
  assert.equal(await page.locator("#book").isDisabled(), true, "no booking before the sale opens");
  assert.equal(await page.locator("#best").isDisabled(), true);
  // The server's sales_opened frame turns booking on, whatever this clock says.
  await page.locator("#book:not([disabled])").waitFor({ timeout: 15000 });
  assert.equal(await page.locator("#sale").isHidden(), true);
  await kiosk.locator(".sale").waitFor({ state: "hidden" });
  await page.locator("#book").click();
  await page.locator("#receipt", { hasText: "Booked" }).waitFor();
  await page.close();
  await kiosk.close();
});

test("the waiting room shows the place, then the turn, and the kiosk the queue", async () => {
  const opens = new Date(Date.now() + 3000).toISOString();
  const show = await server.createHall("Queued on-sale", SMALL_HALL,
    { sales_open_at: opens, queue: { admit_per_minute: 60000, max_active: 1, active_minutes: 5 } });
  const kiosk = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await kiosk.goto(`${server.url}/kiosk?show=${show}`);
  await kiosk.locator(".state", { hasText: "Live" }).waitFor();
  // Two buyers: the first admitted takes the only active place (max_active 1).
  const a = await openShow(show);
  await a.locator("#queue", { hasText: "You're in the waiting room" }).waitFor();
  const b = await openShow(show);
  assert.equal(await a.locator("#best").isDisabled(), true, "the hall is read-only while waiting");
  const turn = async (page) => page.locator("#queue", { hasText: "It's your turn" }).waitFor({ timeout: 15000 }).then(() => page);
  const lucky = await Promise.race([turn(a), turn(b)]);
  const other = lucky === a ? b : a;
  await other.locator("#queue-position", { hasText: "Your place: 1." }).waitFor();
  assert.match(await other.locator("#queue-ahead").textContent(), /0 ahead of you/);
  assert.equal(await other.locator("#best").isDisabled(), true);
  assert.match(await lucky.locator("#turn-left").textContent(), /\d:\d\d left/);
  await lucky.locator("#best:not([disabled])").waitFor();
  await seat(lucky, "s-A-1").click();
  await lucky.locator("#book").click();
  await lucky.locator("#receipt", { hasText: "Booked" }).waitFor();
  // Paying ended the first turn: the second buyer's comes.
  await other.locator("#queue", { hasText: "It's your turn" }).waitFor({ timeout: 15000 });
  await kiosk.locator(".queue-info", { hasText: /Queue: \d+ waiting · 60,000 let in per minute/ }).waitFor();
  await Promise.all([a.close(), b.close(), kiosk.close()]);
});

test("the kiosk says Sold out when nothing is left", async () => {
  const show = await server.createHall("Tiny", { categories: SMALL_HALL.categories,
    sections: [{ key: "s", name: "Stalls", rows: [{ label: "A", seats: 1, category: "A" }] }] });
  const kiosk = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await kiosk.goto(`${server.url}/kiosk?show=${show}`);
  await kiosk.locator(".state", { hasText: "Live" }).waitFor();
  assert.equal(await kiosk.locator(".sale").isHidden(), true);
  const { status } = await server.api(`/shows/${show}/book`, { seat_nos: ["s-A-1"], user_id: "k", immediate_confirm: true });
  assert.equal(status, 201);
  await kiosk.locator(".sale", { hasText: "Sold out" }).waitFor();
  await kiosk.close();
});

test("the kiosk fills a 1920 × 1080 screen with availability per category, live", async () => {
  const show = await server.createHall("Lobby");
  const page = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.goto(`${server.url}/kiosk?show=${show}`);
  await page.locator(".state", { hasText: "Live" }).waitFor();
  const left = (key) => page.locator(`.tile[data-category="${key}"] strong`);
  await page.locator('.tile[data-category="A"] strong', { hasText: /^8$/ }).waitFor();
  assert.equal(await left("B").textContent(), "12");
  await server.api(`/shows/${show}/book`, { seat_nos: ["s-A-1", "s-A-2"], user_id: "api" });
  await server.api(`/shows/${show}/book`, { seat_nos: ["s-B-4"], user_id: "api", immediate_confirm: false });
  await page.locator('.tile[data-category="A"] strong', { hasText: /^6$/ }).waitFor({ timeout: 2000 });
  assert.equal(await left("B").textContent(), "11");
  assert.equal(await page.locator('[data-count="BOOKED"]').textContent(), "2");
  assert.equal(await page.locator('[data-count="RESERVED"]').textContent(), "1");
  await page.locator(".last", { hasText: "Last change" }).waitFor();
  assert.match(await page.locator(".when").textContent(), /\d/);
  // Everything on one screen, the hall at a readable size.
  const size = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]);
  assert.deepEqual(size, [1920, 1080]);
  const hall = await page.locator(".hall").boundingBox();
  assert.ok(hall.width > 800 && hall.height > 500, `the hall is drawn at ${JSON.stringify(hall)}`);
  await page.close();
});

test("the seat map and the kiosk recover by themselves after the server restarts", async () => {
  const show = await server.createShow("Restart", 10);
  const page = await openShow(show);
  const kiosk = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await kiosk.goto(`${server.url}/kiosk?show=${show}`);
  await kiosk.locator(".state", { hasText: "Live" }).waitFor();
  await server.stop();
  await page.locator("#connection", { hasText: "Reconnecting" }).waitFor({ timeout: 5000 });
  await kiosk.locator(".overlay", { hasText: "Reconnecting" }).waitFor({ timeout: 5000 });
  await server.run();
  await server.api(`/shows/${show}/book`, { seat_nos: ["9"], user_id: "after-restart" });
  await page.locator("#connection", { hasText: "Live" }).waitFor({ timeout: 20000 });
  await status(page, "9", "BOOKED").waitFor({ timeout: 5000 });
  await kiosk.locator(".state", { hasText: "Live" }).waitFor({ timeout: 20000 });
  assert.ok(!(await kiosk.locator(".overlay").isVisible()));
  // Both came back with their maps' digests, and were sent only what differed.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /boxoffice_resumes_total\{outcome="resumed"\} [2-9]/);
  await page.close();
  await kiosk.close();
});

test("loading the seat map and the kiosk asks for nothing that is not there", async () => {
  for (const path of ["/", "/kiosk?show=1"]) {
    const page = await chrome.newPage();
    const missing = [];
    page.on("response", (r) => r.status() >= 400 && missing.push(`${r.status()} ${r.url()}`));
    await page.goto(`${server.url}${path}`);
    await page.waitForLoadState("networkidle");
    assert.deepEqual(missing, [], `${path} asked for missing resources`);
    const icon = await page.evaluate(() => document.querySelector("link[rel=icon]")?.href);
    assert.ok(icon?.endsWith("/assets/icon.svg"), `${path} declares its icon`);
    await page.close();
  }
});
