// Helpers for the operations tests: a gateway whose own JSON logger writes into memory, and requests
// carrying the admin token.
import type { DestinationStream } from "pino";
import { startApp, type App } from "../../src/app.ts";
import { tempDir, testConfig } from "./app.ts";

export const ADMIN_TOKEN = "admin-token-for-tests";

export interface CapturedLog extends DestinationStream {
  lines: string[];
  parsed(): Record<string, unknown>[];
}

function captureLog(): CapturedLog {
  const lines: string[] = [];
  return {
    lines,
    write: (s: string) => void lines.push(...s.split("\n").filter(Boolean)),
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A gateway built by startApp with its real logger (level from the config) writing into `log`. */
export async function startLoggedApp(overrides: Record<string, unknown>, log = captureLog(), options: { now?: () => number } = {}, dir = tempDir()) {
  const config = testConfig(dir, { admin: { token: ADMIN_TOKEN }, log: { level: "warn" }, ...overrides });
  const app = await startApp(config, { logDestination: log, now: options.now });
  return Object.assign(app, { dir, captured: log, config }) as App & { dir: string; captured: CapturedLog; config: typeof config };
}

export const bearer = (token = ADMIN_TOKEN) => ({ authorization: `Bearer ${token}` });
export const basic = (password = ADMIN_TOKEN, user = "admin") => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` });

export async function adminFetch(base: string, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const r = await fetch(`${base}${path}`, {
    method: init.method ?? "GET",
    headers: { ...(init.body !== undefined ? { "content-type": "application/json" } : {}), ...(init.headers ?? bearer()) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, text, json, headers: r.headers };
}
