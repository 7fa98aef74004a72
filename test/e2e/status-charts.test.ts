// The status page at a glance, in a real headless browser (Debian's chromium via playwright-core): per
// carrier, the submit outcomes drawn as inline SVG bars that add up to what the carriers answered; a
// webhook URL failing again and again is one counted line among the problems; the page loads nothing
// but itself and runs no script. A screenshot is kept in .tmp/status-page.png.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { BrowserContext } from "playwright-core";
import { ACME_SECRET, post, sendBody, waitFor } from "../support/app.ts";
import { ADMIN_TOKEN, startLoggedApp } from "../support/ops.ts";
import { startSink } from "../support/sink.ts";
import { chromiumSuite, launchChromium } from "../support/chromium.ts";

const suite = chromiumSuite("status-charts.test.ts");
const screenshot = resolve(import.meta.dir, "../../.tmp/status-page.png");

suite("status page charts and grouped problems in chromium", () => {
  let context: BrowserContext;
  let app: Awaited<ReturnType<typeof startLoggedApp>>;
  const sink = startSink(ACME_SECRET);

  beforeAll(async () => {
    context = await launchChromium({ httpCredentials: { username: "admin", password: ADMIN_TOKEN }, viewport: { width: 1000, height: 900 } });
    app = await startLoggedApp({});
  }, 30000);

  afterAll(async () => {
    await context?.close();
    await app?.stop();
    sink.stop();
  });

  test("bars add up to the carriers' answers; one webhook URL's failures are one line; nothing else is loaded", async () => {
    // SMS: 3 accepted at once, 2 refused once then accepted (sandbox scenario 01), 1 refused for good (02).
    // MMS: 2 accepted. Their webhooks are answered 500, so the outbox keeps retrying one URL.
    sink.answer = 500;
    const sms = (to: string) => post(app.url, "/sms", sendBody({ to, callback_url: sink.url, subject: undefined, fallback_text: undefined }));
    for (const to of ["0012025550123", "0012025550124", "0012025550125", "0012025550101", "0012025551101", "0012025550102"]) expect((await sms(to)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await post(app.url, "/mms", sendBody({ callback_url: sink.url }))).status).toBe(200);
    const submits = () => app.metrics.submissions.get().then((m) => Object.fromEntries(m.values.map((v) => [`${v.labels.carrier}:${v.labels.outcome}`, v.value])));
    await waitFor("every carrier answer", async () => {
      const s = await submits();
      return s["sms:ok"] === 5 && s["sms:temporary"] === 2 && s["sms:permanent"] === 1 && s["mms:ok"] === 2;
    });
    const retried = () => app.activity.recentErrors().find((e) => e.msg === "webhook not delivered; will retry" && e.target === sink.url);
    await waitFor("the webhook URL failed several times", () => (retried()?.count ?? 0) >= 3);

    const page = await context.newPage();
    const requested: string[] = [];
    page.on("request", (r) => requested.push(r.url()));
    const response = await page.goto(`${app.url}/status?refresh=3600`);
    expect(response?.status()).toBe(200);

    // What each carrier's bars say, read from the drawn SVG.
    const drawn = async (carrier: string, series: string) =>
      page.locator(`svg[data-k="chart:carrier:${carrier}"] rect[data-series="${series}"]`).evaluateAll((rs) => rs.reduce((n, r) => n + Number(r.getAttribute("data-count")), 0));
    expect(await drawn("sms", "ok")).toBe(5);
    expect(await drawn("sms", "temporary")).toBe(2);
    expect(await drawn("sms", "permanent")).toBe(1);
    expect(await drawn("mms", "ok")).toBe(2);
    expect(await drawn("mms", "permanent")).toBe(0);
    expect(await page.locator('svg[data-k="chart:accepted"] rect[data-series="accepted"]').evaluateAll((rs) => rs.reduce((n, r) => n + Number(r.getAttribute("data-count")), 0))).toBe(8);
    // Drawn to scale: within one chart, bar heights are proportional to their counts.
    const bars = await page
      .locator('svg[data-k="chart:carrier:sms"] rect[data-series]')
      .evaluateAll((rs) => rs.map((r) => [Number(r.getAttribute("data-count")), r.getBoundingClientRect().height] as [number, number]));
    const perItem = bars.map(([n, h]) => h / n);
    for (const x of perItem) expect(Math.abs(x - perItem[0]!)).toBeLessThan(0.5);
    for (const carrier of ["mms", "sms", "accepted"]) {
      const svg = page.locator(`svg[data-k="${carrier === "accepted" ? "chart:accepted" : `chart:carrier:${carrier}`}"]`);
      expect(await svg.isVisible()).toBe(true);
    }

    // The failing webhook URL is one row, counted, with first and last seen.
    const rows = page.locator("tr", { hasText: "webhook not delivered; will retry" });
    expect(await rows.count()).toBe(1);
    const cells = await rows.first().locator("td").allTextContents();
    expect(cells[1]).toBe(sink.url);
    expect(Number(cells[3])).toBeGreaterThanOrEqual(3);
    expect(Date.parse(cells[4]!)).toBeLessThanOrEqual(Date.parse(cells[5]!));

    // One document: no script, nothing fetched from anywhere else.
    expect(await page.locator("script").count()).toBe(0);
    expect(requested).toEqual([`${app.url}/status?refresh=3600`]);

    mkdirSync(resolve(screenshot, ".."), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = readFileSync(screenshot);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(png.byteLength).toBeGreaterThan(10_000);
  }, 60000);
});
