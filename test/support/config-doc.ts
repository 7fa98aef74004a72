// The configuration document of a test gateway, as TOML would give it. No import from src/: the suites
// that drive the compiled binary use it without loading the gateway into the test process.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ACME_KEY = "acme-test-key";
export const ACME_SECRET = "acme-callback-secret";
/** The Basic credentials a test MMSC sends to the gateway's /mm7 (required with kind = "mm7"). */
export const MM7_INBOUND = { username: "mmsc", password: "mmsc-inbound-secret" };

export function tempDir(prefix = "gw-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Objects merged key by key; arrays and scalars in `b` replace those in `a`. */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const both = v && typeof v === "object" && !Array.isArray(v) && a[k] && typeof a[k] === "object" && !Array.isArray(a[k]);
    out[k] = both ? deepMerge(a[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** A test gateway: temp database, loopback port chosen by the OS, sandbox carriers, fast retries. */
export function testConfigDoc(dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return deepMerge(
    {
      server: { listen: "127.0.0.1:0", retry_after_s: 2 },
      store: { path: join(dir, "gateway.db") },
      accounts: [{ id: "acme", headers: { "Chan-Api-Key": ACME_KEY }, callback_secret: ACME_SECRET }],
      egress: { allow: ["127.0.0.0/8"] },
      carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 20 }, sms: { kind: "sandbox", sandbox_report_delay_ms: 20 } },
      delivery: { retry_base_ms: 50, retry_max_ms: 500 },
      webhooks: { batch_max_wait_ms: 5, retry_base_ms: 50, retry_max_ms: 500 },
      log: { level: "silent" },
    },
    overrides,
  );
}
