// Starts a real boxoffice (with its own local PostgreSQL in a temporary DATA_DIR) and a
// real headless Chromium (Debian's, at /usr/bin/chromium).
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const ADMIN_TOKEN = "browser-test-admin-token";
const root = resolve(import.meta.dirname, "../..");
const binary = process.env.BOXOFFICE_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/boxoffice");

const freePort = () => new Promise((ok) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => ok(port)); });
});

export class Server {
  /** `env`: extra settings for this server, e.g. ALLOWED_ORIGINS; `args`: flags. */
  static async start(env = {}, args = []) {
    const server = new Server();
    server.extraEnv = env;
    server.args = args;
    server.dir = mkdtempSync(join(tmpdir(), "boxoffice-browser-"));
    // Run as root, boxoffice runs PostgreSQL as the postgres account, which must reach it.
    chmodSync(server.dir, 0o755);
    server.port = await freePort();
    server.url = `http://127.0.0.1:${server.port}`;
    try {
      await server.run();
    } catch (e) {
      await server.close();
      throw e;
    }
    return server;
  }

  async run() {
    this.proc = spawn(binary, this.args ?? [], {
      env: { ...process.env, DATABASE_URL: "", DATA_DIR: join(this.dir, "pg"), PORT: String(this.port),
             HOLD_TTL_SECS: "3", ADMIN_TOKEN, RUST_LOG: "warn", ...this.extraEnv },
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.exited = new Promise((ok) => this.proc.once("exit", ok));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try { if ((await fetch(`${this.url}/health`)).ok) return; } catch { /* not up yet */ }
      await new Promise((ok) => setTimeout(ok, 100));
    }
    throw new Error("boxoffice did not start");
  }

  /** SIGTERM and wait: the server stops its PostgreSQL cluster too. */
  async stop() {
    if (this.proc.exitCode === null) this.proc.kill("SIGTERM");
    await this.exited;
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async api(path, body, token) {
    const response = await fetch(`${this.url}${path}`, {
      method: body ? "POST" : "GET",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: await response.json() };
  }

  async createShow(name, seats) {
    const { status, body } = await this.api("/admin/shows",
      { name, start_time: "2030-01-01T20:00:00Z", total_seats: seats }, ADMIN_TOKEN);
    if (status !== 201) throw new Error(`create show: ${status}`);
    return body.show.id;
  }
}

/** A hall of two categories: row A Premium (8 seats, an aisle after 4), row B
 * Standard (8 seats), and row C of 4 accessible seats. */
export const SMALL_HALL = {
  categories: [
    { key: "A", name: "Premium", price: "89.00", currency: "EUR" },
    { key: "B", name: "Standard", price: "45.50", currency: "EUR" },
  ],
  sections: [{ key: "s", name: "Stalls", rows: [
    { label: "A", seats: [1, 2, 3, 4, null, 5, 6, 7, 8], category: "A" },
    { label: "B", seats: 8, category: "B" },
    { label: "C", seats: 4, category: "B", accessible: true },
  ] }],
};

Server.prototype.createHall = async function createHall(name, layout = SMALL_HALL, extra = {}) {
  const { status, body } = await this.api("/admin/shows",
    { name, start_time: "2030-01-01T20:00:00Z", layout, ...extra }, ADMIN_TOKEN);
  if (status !== 201) throw new Error(`create hall: ${status} ${JSON.stringify(body)}`);
  return body.show.id;
};

/** A free port on 127.0.0.1, for a second origin of the tests' own. */
export { freePort };

// Playwright gives every launch a fresh, temporary user data directory of its own.
export function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
