// The seat map and the kiosk, used as a person would, in a real headless Chromium
// against a real boxoffice (and its real PostgreSQL).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { ADMIN_TOKEN, Server, browser } from "./harness.mjs";

// Screenshots go to a temporary directory, so that a test run leaves the git tree
// as it found it; UPDATE_SCREENSHOTS=1 refreshes the ones in docs/screenshots.
const shots = process.env.UPDATE_SCREENSHOTS
  ? resolve(import.meta.dirname, "../../docs/screenshots")
  : mkdtempSync(join(tmpdir(), "boxoffice-shots-"));
let server, chrome;

before(async () => {
  mkdirSync(shots, { recursive: true });
  server = await Server.start();
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
  await server?.close();
});

async function openShow(show) {
  const page = await chrome.newPage({ viewport: { width: 900, height: 800 } });
  await page.goto(`${server.url}/#/shows/${show}`);
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  return page;
}
const seat = (page, n) => page.locator(`.seat[data-seat="${n}"]`);

test("a seat booked on one page shows as taken on another within a second", async () => {
  const show = await server.createShow("Two pages", 20);
  const [a, b] = [await openShow(show), await openShow(show)];
  await seat(a, "7").click();
  assert.equal(await seat(a, "7").getAttribute("aria-pressed"), "true");
  await a.click("#book");
  await a.locator("#message", { hasText: "Booked seat 7" }).waitFor();
  await assert.doesNotReject(seat(b, "7").and(b.locator('[data-status="BOOKED"]')).waitFor({ timeout: 1000 }));
  assert.match(await seat(b, "7").getAttribute("aria-label"), /Seat 7, sold/);
  await a.screenshot({ path: join(shots, "seatmap.png") });
  await a.close();
  await b.close();
});

test("seats can be chosen with the keyboard, on a phone-sized screen", async () => {
  const show = await server.createShow("Keyboard", 12);
  const page = await chrome.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(`${server.url}/#/shows/${show}`);
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  await seat(page, "2").focus();
  await page.keyboard.press("Space");
  assert.equal(await seat(page, "2").getAttribute("aria-pressed"), "true");
  assert.equal(await seat(page, "2").getAttribute("aria-label"), "Seat 2, selected");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  assert.equal(await seat(page, "3").getAttribute("aria-pressed"), "true", "Tab moves to the next seat");
  // Every seat fits the screen's width: no horizontal scrolling.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: join(shots, "seatmap-phone.png") });
  await page.close();
});

test("a hold counts down, and when it runs out both pages show the seat free again", async () => {
  const show = await server.createShow("Holds", 10);
  const [a, b] = [await openShow(show), await openShow(show)];
  await seat(a, "3").click();
  await a.click("#hold");
  await a.locator("#hold-panel #countdown").waitFor();
  assert.match(await a.locator("#countdown").textContent(), /^0:0[1-3]$/);
  await seat(b, "3").and(b.locator('[data-status="RESERVED"]')).waitFor({ timeout: 1000 });
  await a.screenshot({ path: join(shots, "seatmap-hold.png") });
  // HOLD_TTL_SECS is 3 in these tests: the hold expires within TTL + 1 s.
  for (const page of [a, b]) {
    await seat(page, "3").and(page.locator('[data-status="AVAILABLE"]')).waitFor({ timeout: 5000 });
  }
  await a.locator("#message", { hasText: "expired" }).waitFor();
  await a.close();
  await b.close();
});

test("a hold survives a reload and can be confirmed", async () => {
  const show = await server.createShow("Reload", 10);
  const page = await openShow(show);
  await seat(page, "4").click();
  await page.click("#hold");
  await page.locator("#hold-panel").waitFor();
  await page.reload();
  await page.locator("#hold-panel #confirm").click();
  await page.locator("#message", { hasText: "Confirmed" }).waitFor();
  await seat(page, "4").and(page.locator('[data-status="BOOKED"]')).waitFor();
  await page.close();
});

test("a conflict is explained in place, with the grid already right", async () => {
  const show = await server.createShow("Conflict", 10);
  const page = await chrome.newPage();
  // Hold back this page's seat updates, so that it still offers seat 5 after someone
  // else has bought it.
  let frozen = false;
  let toPage;
  const held = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
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
  const { status } = await server.api(`/shows/${show}/book`, { seat_nos: ["5"], user_id: "someone-else" });
  assert.equal(status, 201);
  await page.click("#book");
  // Release the held updates a moment later; the message must wait for them.
  setTimeout(() => {
    frozen = false;
    for (const m of held.splice(0)) toPage.send(m);
  }, 300);
  const message = page.locator("#message", { hasText: "Seat 5 was just taken" });
  await message.waitFor({ timeout: 3000 });
  assert.equal(await seat(page, "5").getAttribute("data-status"), "BOOKED", "the grid is right when the message shows");
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

test("the kiosk's counts change when a booking is made through the API", async () => {
  const show = await server.createShow("Lobby", 30);
  const page = await chrome.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(`${server.url}/kiosk?show=${show}`);
  const available = page.locator('[data-count="AVAILABLE"]');
  await page.locator(".state", { hasText: "Live" }).waitFor();
  assert.equal(await available.textContent(), "30");
  await server.api(`/shows/${show}/book`, { seat_nos: ["1", "2", "3"], user_id: "api" });
  await server.api(`/shows/${show}/book`, { seat_nos: ["4"], user_id: "api", immediate_confirm: false });
  await page.locator('[data-count="AVAILABLE"]', { hasText: /^26$/ }).waitFor({ timeout: 2000 });
  assert.equal(await page.locator('[data-count="BOOKED"]').textContent(), "3");
  assert.equal(await page.locator('[data-count="RESERVED"]').textContent(), "1");
  await page.locator(".last", { hasText: "Last change" }).waitFor();
  await page.screenshot({ path: join(shots, "kiosk.png") });
  await page.close();
});

test("the seat map recovers by itself after the server restarts", async () => {
  const show = await server.createShow("Restart", 10);
  const page = await openShow(show);
  await server.stop();
  await page.locator("#connection", { hasText: "Reconnecting" }).waitFor({ timeout: 5000 });
  await server.run();
  await server.api(`/shows/${show}/book`, { seat_nos: ["9"], user_id: "after-restart" });
  await page.locator("#connection", { hasText: "Live" }).waitFor({ timeout: 20000 });
  await seat(page, "9").and(page.locator('[data-status="BOOKED"]')).waitFor({ timeout: 5000 });
  await page.close();
});
