// The status page in a real headless browser (Debian's chromium driven by playwright-core): the
// browser's own Basic-auth login, the live numbers matching the store, and the page reloading itself.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { BrowserContext } from "playwright-core";
import { ACME_SECRET, post, sendBody, waitFor } from "../support/app.ts";
import { ADMIN_TOKEN, startLoggedApp } from "../support/ops.ts";
import { startSink } from "../support/sink.ts";
import { chromiumSuite, launchChromium } from "../support/chromium.ts";

const suite = chromiumSuite("status-browser.test.ts");

suite("status page in chromium", () => {
  let context: BrowserContext;
  let app: Awaited<ReturnType<typeof startLoggedApp>>;
  const sink = startSink(ACME_SECRET);

  beforeAll(async () => {
    // What the browser answers the Basic-auth prompt with, as an operator would type it.
    context = await launchChromium({ httpCredentials: { username: "admin", password: ADMIN_TOKEN } });
    // MMS reports take an hour here (they stay `submitted`, a stable queue); SMS reports come at once
    // and their webhooks are refused for good (dead letters).
    app = await startLoggedApp({ carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 3_600_000 }, sms: { kind: "sandbox", sandbox_report_delay_ms: 20 } } });
  }, 30000);

  afterAll(async () => {
    await context?.close();
    await app?.stop();
    sink.stop();
  });

  test("after a login prompt answered with admin/token, the page shows what the store holds, and refreshes itself", async () => {
    sink.answer = 400;
    for (let i = 0; i < 4; i++) expect((await post(app.url, "/mms", sendBody({ callback_url: sink.url }))).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await post(app.url, "/sms", sendBody({ callback_url: sink.url, subject: undefined, fallback_text: undefined }))).status).toBe(200);
    const stat = async (state: string, channel: string) => (await app.store.queueStats()).find((q) => q.state === state && q.channel === channel)?.count ?? 0;
    await waitFor("queue settled", async () => (await stat("submitted", "mms")) === 4 && (await app.store.listDeadEvents()).length === 3);

    // Without credentials the page is a Basic-auth challenge (what makes the browser prompt).
    const challenge = await fetch(`${app.url}/status`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("www-authenticate")).toStartWith("Basic ");

    const page = await context.newPage();
    const response = await page.goto(`${app.url}/status?refresh=1`);
    expect(response?.status()).toBe(200);
    const figure = async (key: string) => (await page.locator(`[data-k="${key}"]`).first().textContent())?.trim();

    expect(await figure("queue:submitted:mms")).toBe(String(await stat("submitted", "mms")));
    const deadInStore = (await app.store.eventStats()).find((e) => e.state === "dead")?.count;
    expect(await figure("events:dead")).toBe(String(deadInStore));
    expect(await figure("minute:accepted")).toBe("7");
    expect(await figure("window:finals")).toBe("3");
    expect(await figure("carrier:mms")).toBe("up");
    const rows = await page.locator("table").last().locator("tr").count();
    expect(rows - 1).toBe((await app.store.listDeadEvents()).length);
    for (const d of await app.store.listDeadEvents()) expect(await page.content()).toContain(String(d.event_id));
    expect(await page.title()).toBe("mms-gateway status");

    // One more message: the page shows it by reloading itself (meta refresh), not by being told to.
    const loadsBefore = await page.evaluate(() => performance.timeOrigin);
    expect((await post(app.url, "/mms", sendBody({ callback_url: sink.url }))).status).toBe(200);
    await waitFor("store has 5", async () => (await stat("submitted", "mms")) === 5);
    // A function, not a string: the page's CSP forbids eval. (No DOM types in this tsconfig, hence `any`.)
    await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-k="queue:submitted:mms"]')?.textContent === "5", undefined, { timeout: 15000 });
    expect(await page.evaluate(() => performance.timeOrigin)).not.toBe(loadsBefore);
    expect(await figure("minute:accepted")).toBe("8");
  }, 45000);
});
