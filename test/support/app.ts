// Builds a real gateway for a test: temp SQLite file, loopback port chosen by the OS, silent logs.
import pino from "pino";
import { startApp, type App } from "../../src/app.ts";
import { buildConfig, type Config } from "../../src/config.ts";
import type { Store } from "../../src/store/index.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { ACME_KEY, tempDir, testConfigDoc } from "./config-doc.ts";

export { ACME_KEY, ACME_SECRET, MM7_INBOUND, deepMerge, tempDir, testConfigDoc } from "./config-doc.ts";

export function testConfig(dir: string, overrides: Record<string, unknown> = {}): Config {
  return buildConfig(testConfigDoc(dir, overrides));
}

export async function startTestApp(overrides: Record<string, unknown> = {}, dir = tempDir()): Promise<App & { dir: string }> {
  const config = testConfig(dir, overrides);
  const app = await startApp(config, { log: pino({ level: process.env.TEST_LOG ?? "silent" }) });
  return Object.assign(app, { dir });
}

/** The SQLite driver under a test app, for a test that looks at or breaks the file itself. */
export function sqlite(store: Store): SqliteStore {
  if (!(store instanceof SqliteStore)) throw new Error("this test needs the SQLite store");
  return store;
}

export function sendBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    to: "0012025550123",
    from: "18885551234",
    subject: "Hello",
    text: "Hello from the test",
    fallback_text: "Hello (SMS)",
    request_id: crypto.randomUUID(),
    custom_data: "cd=1&x=%20y",
    callback_url: "http://127.0.0.1:9/unused",
    metadata: { campaign: "c1" },
    ...overrides,
  };
}

export async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = { "Chan-Api-Key": ACME_KEY },
): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

export async function waitFor<T>(what: string, check: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

