// Debian's chromium driven by playwright-core, for the tests that look at a page in a real browser.
import { describe } from "bun:test";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";

const chromium = "/usr/bin/chromium";
const available = existsSync(chromium);

// Locally a machine without chromium skips (saying so); in CI a missing browser is a failure.
export function chromiumSuite(file: string): typeof describe | typeof describe.skip {
  if (!available && !process.env.CI) console.warn(`${file}: SKIPPED — ${chromium} is missing (apt-get install -y chromium)`);
  return available || process.env.CI ? describe : describe.skip;
}

type ContextOptions = { httpCredentials?: { username: string; password: string }; viewport?: { width: number; height: number } };

// A fresh profile directory each run (playwright takes it as the persistent context's directory).
export async function launchChromium(options: ContextOptions = {}): Promise<BrowserContext> {
  const { chromium: launcher } = await import("playwright-core");
  return launcher.launchPersistentContext(mkdtempSync(join(tmpdir(), "gw-chromium-")), {
    executablePath: chromium,
    ...options,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
