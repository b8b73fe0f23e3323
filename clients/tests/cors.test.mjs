// A front end served from another origin (as the old service's React app was, from
// its dev server or a static host) uses the REST API with only ALLOWED_ORIGINS set:
// it lists shows, creates one and books a seat, in a real headless Chromium.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { ADMIN_TOKEN, Server, browser, freePort } from "./harness.mjs";

let server, chrome, front, frontUrl, strangerUrl, stranger;

// The front end: plain fetch calls with JSON bodies and a bearer token, the
// requests that make a browser send CORS preflights.
const page = (api) => `<!doctype html><meta charset="utf-8"><title>Front end</title>
<pre id="log"></pre>
<script>
const api = ${JSON.stringify(api)};
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
async function call(path, body, token) {
  const response = await fetch(api + path, {
    method: body ? "POST" : "GET",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: "Bearer " + token } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}
window.run = async (token) => {
  try {
    const listed = await call("/shows");
    log("listed " + listed.status + " " + listed.body.count);
    const created = await call("/admin/shows",
      { name: "From another origin", start_time: "2030-01-01T20:00:00Z", total_seats: 4 }, token);
    log("created " + created.status + " " + created.body.show.id);
    const booked = await call("/shows/" + created.body.show.id + "/book", { seat_nos: ["2"], user_id: "front" });
    log("booked " + booked.status + " " + booked.body.booking.seat_nos.join(","));
  } catch (e) {
    log("failed " + e.name);
  }
};
</script>`;

function serve(html) {
  return new Promise(async (ok) => {
    const port = await freePort();
    const http = createServer((_, res) => { res.setHeader("content-type", "text/html"); res.end(html); });
    http.listen(port, "127.0.0.1", () => ok({ http, url: `http://127.0.0.1:${port}` }));
  });
}

before(async () => {
  const frontPort = await freePort();
  frontUrl = `http://127.0.0.1:${frontPort}`;
  server = await Server.start({ ALLOWED_ORIGINS: frontUrl });
  front = createServer((_, res) => { res.setHeader("content-type", "text/html"); res.end(page(server.url)); });
  await new Promise((ok) => front.listen(frontPort, "127.0.0.1", ok));
  ({ http: stranger, url: strangerUrl } = await serve(page(server.url)));
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
  front?.close();
  stranger?.close();
  await server?.close();
});

async function runFrom(url) {
  const tab = await chrome.newPage();
  await tab.goto(url);
  await tab.evaluate((token) => window.run(token), ADMIN_TOKEN);
  const log = await tab.locator("#log").textContent();
  await tab.close();
  return log.trim().split("\n");
}

test("a front end on a listed origin lists shows, creates a show and books a seat", async () => {
  const log = await runFrom(frontUrl);
  assert.match(log[0], /^listed 200 \d+$/);
  assert.match(log[1], /^created 201 \d+$/);
  assert.equal(log[2], "booked 201 2");
  const show = Number(log[1].split(" ")[2]);
  const { body } = await server.api(`/shows/${show}/seats`);
  assert.equal(body.seats.find((s) => s.seat_no === "2").status, "BOOKED");
});

test("a page on an origin that is not listed cannot read the API", async () => {
  const log = await runFrom(strangerUrl);
  assert.deepEqual(log, ["failed TypeError"]);
});
