// The hosted media page of a fallback in a real headless browser (Debian's chromium via playwright-core):
// it shows the image, runs no script and asks nothing from any other origin.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { ACME_SECRET, post, sendBody, sqlite, startTestApp, waitFor } from "../support/app.ts";
import { largePng } from "../support/images.ts";
import { startSink } from "../support/sink.ts";
import { chromiumSuite, launchChromium } from "../support/chromium.ts";

const suite = chromiumSuite("media-page-browser.test.ts");

suite("hosted media page in chromium", () => {
  let context: BrowserContext;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  const sink = startSink(ACME_SECRET);
  let png: Uint8Array;
  const media = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(png, { headers: { "content-type": "image/png" } }) });

  beforeAll(async () => {
    png = await largePng(1800, 1200);
    context = await launchChromium();
    app = await startTestApp({ media_link: { base_url: "https://m.example.test" } });
  }, 30_000);

  afterAll(async () => {
    await context?.close();
    await app?.stop();
    sink.stop();
    media.stop(true);
  });

  test("a fallback's page shows its subject, text and image (decoded by the browser), with no script and nothing from elsewhere", async () => {
    // Sandbox recipients ending in 03 cannot take MMS: the message falls back to SMS with a page.
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550103", callback_url: sink.url, subject: "Spring <sale>", text: "Up to 50% off", media: { url: `http://127.0.0.1:${media.port}/spring.png` } }));
    await waitFor("fallback delivered", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"));
    const { token } = sqlite(app.store).db.query("SELECT token FROM media_links WHERE message_id = ?").get(r.json.id) as { token: string };

    const page = await context.newPage();
    const requested: string[] = [];
    page.on("request", (req) => requested.push(req.url()));
    const response = await page.goto(`${app.url}/m/${token}`);
    expect(response!.status()).toBe(200);
    // Runs in the page; this project's TypeScript has no DOM library.
    await page.waitForFunction(() => (globalThis as any).document.querySelector("img")?.complete === true);
    const shown = await page.evaluate(() => {
      const document = (globalThis as any).document;
      const img = document.querySelector("img");
      return { natural: [img.naturalWidth, img.naturalHeight], title: document.title, h1: document.querySelector("h1")?.textContent, text: document.body.innerText, scripts: document.scripts.length };
    });
    expect(shown.natural).toEqual([1280, 853]);
    expect(shown.title).toBe("Spring <sale>");
    expect(shown.h1).toBe("Spring <sale>");
    expect(shown.text).toContain("Up to 50% off");
    expect(shown.scripts).toBe(0);
    expect(requested.every((u) => u.startsWith(`${app.url}/m/${token}`))).toBe(true);
    await page.screenshot({ path: join(app.dir, "media-page.png") });

    const missing = await page.goto(`${app.url}/m/${"A".repeat(22)}`);
    expect(missing!.status()).toBe(404);
    await page.close();
  }, 60_000);
});
