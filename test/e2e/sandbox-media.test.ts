// The README's "Large images, and a fallback with a link" walkthrough, run against the compiled binary with
// docs/sandbox-media.toml itself (only its listen port, data path and page address moved to this test's own):
// the shipped file must keep doing what the README says it does.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { post, tempDir, waitFor } from "../support/app.ts";
import { configFor, freePort, startBinary, type Running } from "../support/binary.ts";
import { describeImage, rotatedJpeg } from "../support/images.ts";
import { startSink } from "../support/sink.ts";

const shipped = Bun.TOML.parse(readFileSync(join(import.meta.dir, "../../docs/sandbox-media.toml"), "utf8")) as Record<string, any>;
const account = shipped.accounts[0] as { id: string; headers: Record<string, string>; callback_secret: string };
const limit = shipped.carriers.mms.max_message_bytes as number;
const sink = startSink(account.callback_secret);
let photo: Uint8Array;
const media = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: () => new Response(photo, { headers: { "content-type": "image/jpeg" } }),
});
const dir = tempDir();
const port = freePort();
let gw: Running;

beforeAll(async () => {
  photo = await rotatedJpeg(4000, 3000);
  const doc = { ...shipped, store: { ...shipped.store, path: join(dir, "gateway.db") }, media_link: { ...shipped.media_link, base_url: `http://127.0.0.1:${port}` } };
  gw = await startBinary(configFor(dir, doc), port);
}, 60_000);

afterAll(async () => {
  gw?.proc.kill("SIGTERM");
  await gw?.proc.exited;
  media.stop(true);
  sink.stop();
});

const send = (to: string) =>
  post(
    gw.url,
    "/mms",
    { to, from: "18885551234", text: "Spring sale", fallback_text: "Spring sale:", media: { url: `http://127.0.0.1:${media.port}/big.jpg` }, callback_url: sink.url, request_id: `walk-${to}-${Date.now()}` },
    account.headers,
  );
const finalEvent = async (id: string) => waitFor(`the report of ${id}`, () => sink.byMessage(id).find((e) => e.status !== "submitted" && e.status !== "accepted"), 60_000);

test("docs/sandbox-media.toml: a large photo is adapted once and delivered; a handset without MMS gets a link to its page, then is remembered", async () => {
  expect(photo.byteLength).toBeGreaterThan(10 * limit);
  const first = await send("0012025550100");
  expect(first.status).toBe(200);
  // The sandbox MMSC refuses anything over its max_message_bytes (`sandbox:size`): delivered means it fit.
  expect(await finalEvent(first.json.id)).toMatchObject({ status: "delivered", fallback: false });
  const again = await send("0012025550101");
  expect((await finalEvent(again.json.id)).status).toBe("delivered");
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  expect(metrics).toMatch(/^gateway_media_adaptations_total 1$/m);

  const refused = await send("0012025550103");
  const event = await finalEvent(refused.json.id);
  expect(event).toMatchObject({ status: "delivered", fallback: true });
  expect(String(event.fallback_reason)).not.toBe("");
  const link = await waitFor("the logged page link", () => /"url":"(http:\/\/127\.0\.0\.1:\d+\/m\/[^"]+)"/.exec(gw.output())?.[1]);
  const page = await fetch(link);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain("Spring sale");
  // The page shows the photo adapted for the web (its own profile, 1280 px; EXIF says portrait), not the MMS copy.
  const src = /<img src="([^"]+)"/.exec(html)![1]!;
  const image = await describeImage(new Uint8Array(await (await fetch(new URL(src, link))).arrayBuffer()));
  expect(image).toMatchObject({ format: "jpeg", width: 960, height: 1280 });

  const remembered = await send("0012025550103");
  expect(await finalEvent(remembered.json.id)).toMatchObject({ fallback: true, fallback_reason: expect.stringMatching(/^capability:no_mms/) });
  // Listed and forgotten as the README shows (the number in any of its spellings).
  const admin = { Authorization: `Bearer ${shipped.admin.token}` };
  const listed = async () => ((await (await fetch(`${gw.url}/admin/capability`, { headers: admin })).json()) as { no_mms: { number: string }[] }).no_mms.map((e) => e.number);
  expect(await listed()).toEqual(["12025550103"]);
  expect((await fetch(`${gw.url}/admin/capability/+12025550103`, { method: "DELETE", headers: admin })).status).toBe(200);
  expect(await listed()).toEqual([]);
}, 120_000);
