// The seat map on a server with AUTH=jwt: a buyer signs in with a token in the URL
// fragment, books over the WebSocket as that buyer, and confirms a hold without
// handling the booking token; every booking carries an idempotency key.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { Server, browser } from "./harness.mjs";

const SECRET = "browser-test-secret-of-32-characters!";
let server, chrome;

const b64url = (data) => Buffer.from(data).toString("base64url");
function mint(sub) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 600 }));
  const signature = createHmac("sha256", SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

before(async () => {
  server = await Server.start({ AUTH: "jwt", JWT_SECRET: SECRET });
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
  await server?.close();
});

test("a signed-in buyer books and confirms as themselves", async () => {
  const show = await server.createShow("Signed in", 6);
  const page = await chrome.newPage();
  await page.goto(`${server.url}/#token=${mint("alice")}`);
  await page.locator("h1", { hasText: "Shows" }).waitFor();
  assert.equal(new URL(page.url()).hash, "#/", "the token leaves the address bar");
  await page.evaluate((hash) => { location.hash = hash; }, `#/shows/${show}`);
  await page.locator('.seat[data-seat="4"]').waitFor();
  await page.locator("#connection", { hasText: "Live" }).waitFor();
  await page.locator('.seat[data-seat="4"]').click();
  await page.click("#hold");
  await page.locator("#my-bookings .confirm").click();
  await page.locator("#message", { hasText: "is confirmed" }).waitFor();

  const { body } = await server.api("/me/bookings", undefined, mint("alice"));
  assert.equal(body.count, 1);
  assert.deepEqual(body.bookings[0].seat_nos, ["4"]);
  assert.equal(body.bookings[0].status, "CONFIRMED");
  const theirs = await server.api("/me/bookings", undefined, mint("bob"));
  assert.equal(theirs.body.count, 0);
  await page.close();
});
