// Takes the README's screenshots (docs/screenshots/*.png) from a real server with
// the demo data and some sales: `cargo build && npm --prefix clients/tests run screenshots`.
// Not part of the test run, which must leave the git tree as it found it.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Server, browser } from "./harness.mjs";

const out = resolve(import.meta.dirname, "../../docs/screenshots");
mkdirSync(out, { recursive: true });
const server = await Server.start({ HOLD_TTL_SECS: "600" }, ["--demo"]);
const chrome = await browser();
try {
  const { body } = await server.api("/shows");
  const show = body.shows.find((s) => s.name.includes("Grand Hall")).id;
  // Some of the hall is gone already: a few groups sold, one held.
  for (const [i, seats] of [["stalls-C-", [9, 10, 11]], ["stalls-D-", [12, 13, 14, 15]], ["stalls-F-", [3, 4]],
    ["circle-C-", [8, 9, 10, 11, 12]], ["stalls-B-", [18, 19]]].entries()) {
    await server.api(`/shows/${show}/book`, { seat_nos: seats[1].map((n) => `${seats[0]}${n}`), user_id: `fan${i}`, immediate_confirm: i !== 4 });
  }
  for (let i = 0; i < 6; i += 1) {
    await server.api(`/shows/${show}/book`, { best_available: { count: 2 }, user_id: `pair${i}` });
  }

  const desktop = await chrome.newPage({ viewport: { width: 1280, height: 1500 } });
  await desktop.goto(`${server.url}/#/shows/${show}`);
  await desktop.locator("#connection", { hasText: "Live" }).waitFor();
  await desktop.selectOption("#best-category", "premium");
  await desktop.fill("#best-count", "4");
  await desktop.click("#best");
  await desktop.locator("#receipt").waitFor();
  await desktop.locator('.seat[data-seat="stalls-G-5"]').click();
  await desktop.locator('.seat[data-seat="stalls-G-6"]').click();
  await desktop.screenshot({ path: join(out, "seatmap.png") });

  const phone = await chrome.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.goto(`${server.url}/#/shows/${show}`);
  await phone.locator("#connection", { hasText: "Live" }).waitFor();
  await phone.locator('.seat[data-seat="stalls-H-8"]').click();
  await phone.locator('.seat[data-seat="stalls-H-9"]').click();
  await phone.screenshot({ path: join(out, "seatmap-phone.png") });

  const kiosk = await chrome.newPage({ viewport: { width: 1920, height: 1080 } });
  await kiosk.goto(`${server.url}/kiosk?show=${show}`);
  await kiosk.locator(".state", { hasText: "Live" }).waitFor();
  await server.api(`/shows/${show}/book`, { best_available: { count: 3, category: "balcony" }, user_id: "late" });
  await kiosk.locator(".last", { hasText: "Last change" }).waitFor();
  await kiosk.screenshot({ path: join(out, "kiosk.png") });
  console.log(`screenshots written to ${out}`);
} finally {
  await chrome.close();
  await server.close();
}
