// Media adaptation from the compiled binary (sharp's addon and the embedded libvips loaded from inside
// it): a large photo adapted within the MMSC's limit, the hosted page of a fallback, capability memory
// across a restart of the binary; on PostgreSQL, all three found by another node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { ACME_SECRET, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { MM7_INBOUND } from "../support/config-doc.ts";
import { configFor, freePort, startBinary, type Running } from "../support/binary.ts";
import { describeAv, describeWithFfmpeg, videoClip } from "../support/av.ts";
import { describeImage, rotatedJpeg, webpPhoto } from "../support/images.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink } from "../support/sink.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";

const LIMIT = 80 * 1024;
const sink = startSink(ACME_SECRET);
let photo: Uint8Array;
// Other sources by path (the photo is served at any other path).
const others = new Map<string, { bytes: Uint8Array; type: string }>();
const media = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (req) => {
    const other = others.get(new URL(req.url).pathname);
    return new Response(other?.bytes ?? photo, { headers: { "content-type": other?.type ?? "image/jpeg" } });
  },
});
let stub: MmscStub;
const dir = tempDir();
const port = freePort();
let gw: Running | null = null;
let db: TestDatabase | null = null;

beforeAll(async () => {
  photo = await rotatedJpeg();
  stub = await startMmscStub({
    maxMessageBytes: LIMIT,
    scenario: (req) => (req.to[0]!.value.endsWith("9077") ? { kind: "status", code: 2002, text: "Address Error" } : { kind: "ok" }),
  });
}, 30_000);

afterAll(async () => {
  gw?.proc.kill("SIGTERM");
  await gw?.proc.exited;
  await stub.stop();
  media.stop(true);
  sink.stop();
  await db?.drop();
}, 30_000);

const config = (more: Record<string, unknown> = {}, at = dir) =>
  configFor(
    at,
    testConfigDoc(at, {
      carriers: { mms: { kind: "mm7", url: stub.url, max_message_bytes: LIMIT } },
      media_link: { base_url: "https://m.example.test" },
      inbound: { mm7: MM7_INBOUND },
      log: { level: "warn" },
      ...more,
    }),
  );
const send = (to: string) => post(gw!.url, "/mms", sendBody({ to, callback_url: sink.url, media: [{ url: `http://127.0.0.1:${media.port}/photo.jpg` }] }));
const submitsTo = (to: string) => stub.received.filter((r) => r.to[0]!.value.endsWith(to));
/** Sends an MMS to `to` and waits until it is delivered as the SMS fallback; its id and the first event's fallback_reason. */
async function sendFallback(to: string): Promise<{ id: string; reason: unknown }> {
  const { id } = (await send(to)).json;
  await waitFor(`fallback to ${to} delivered`, () => sink.byMessage(id).some((e) => e.status === "delivered"), 30_000);
  return { id, reason: sink.byMessage(id)[0]!.fallback_reason };
}

test("the binary adapts a 3000×2000 photo within the limit, serves the fallback's page, and remembers a number across a restart", async () => {
  expect(photo.byteLength).toBeGreaterThan(10 * LIMIT);
  gw = await startBinary(config(), port);

  await send("0012025550141");
  const [submit] = await waitFor("the SubmitReq", () => submitsTo("0141").length === 1 && submitsTo("0141"), 60_000);
  expect(stub.errors).toEqual([]);
  expect(submit!.decodedBytes).toBeLessThanOrEqual(LIMIT);
  const shown = await describeImage(submit!.media[0]!.bytes);
  expect(shown.format).toBe("jpeg");
  expect(shown.height).toBe(1280);
  expect(shown.width).toBeCloseTo(853, -1);

  // Refused as "cannot take MMS": the SMS fallback carries a link to the page with the image.
  const refused = await sendFallback("0044770090009077");
  expect(refused.reason).toStartWith("mm7:2002");
  const db = new Database(join(dir, "gateway.db"), { readonly: true });
  const { token } = db.query("SELECT token FROM media_links WHERE message_id = ?").get(refused.id) as { token: string };
  db.close();
  const html = await (await fetch(`${gw.url}/m/${token}`)).text();
  expect(html).toContain(`<img src="/m/${token}/1"`);
  const image = await fetch(`${gw.url}/m/${token}/1`);
  expect(image.headers.get("content-type")).toBe("image/jpeg");
  expect((await describeImage(new Uint8Array(await image.arrayBuffer()))).height).toBe(1280);

  gw.proc.kill("SIGTERM");
  expect(await gw.proc.exited).toBe(0);
  gw = await startBinary(config(), port);
  expect((await sendFallback("+44770090009077")).reason).toStartWith("capability:no_mms");
  expect(submitsTo("44770090009077")).toHaveLength(1);
  // After the restart the adaptation comes from the database: the metric counts none computed.
  await send("0012025550142");
  await waitFor("the second photo's SubmitReq", () => submitsTo("0142").length === 1, 30_000);
  const metrics = await (await fetch(`${gw.url}/metrics`)).text();
  expect(metrics).toMatch(/^gateway_media_adaptations_total 0$/m);
}, 120_000);

describeWithFfmpeg("media-binary.test.ts")("sources the carrier does not take, from the binary", () => {
  test("a WebP over 1 MiB (streamed to disk, read by the embedded libvips) becomes a JPEG, and a QuickTime clip becomes MP4 by ffmpeg", async () => {
    others.set("/sale.webp", { bytes: await webpPhoto(3200, 2000), type: "image/webp" });
    others.set("/clip.mov", { bytes: await videoClip(3), type: "video/quicktime" });
    expect(others.get("/sale.webp")!.bytes.byteLength).toBeGreaterThan(1024 * 1024);
    gw?.proc.kill("SIGTERM");
    await gw?.proc.exited;
    const at = tempDir();
    gw = await startBinary(config({}, at), freePort());
    for (const [to, path] of [["0012025550181", "/sale.webp"], ["0012025550182", "/clip.mov"]]) {
      await post(gw.url, "/mms", sendBody({ to, callback_url: sink.url, media: [{ url: `http://127.0.0.1:${media.port}${path}` }] }));
    }
    const [image] = await waitFor("the WebP's SubmitReq", () => submitsTo("0181").length === 1 && submitsTo("0181"), 60_000);
    const [video] = await waitFor("the clip's SubmitReq", () => submitsTo("0182").length === 1 && submitsTo("0182"), 60_000);
    expect(stub.errors).toEqual([]);
    expect(image!.decodedBytes).toBeLessThanOrEqual(LIMIT);
    expect(image!.media.map((m) => [m.contentType, m.contentLocation])).toEqual([["image/jpeg", "sale.jpg"]]);
    expect(await describeImage(image!.media[0]!.bytes)).toMatchObject({ format: "jpeg", width: 1280, height: 800 });
    expect(video!.decodedBytes).toBeLessThanOrEqual(LIMIT);
    expect(video!.media.map((m) => [m.contentType, m.contentLocation])).toEqual([["video/mp4", "clip.mp4"]]);
    expect((await describeAv(video!.media[0]!.bytes)).video!.codec).toStartWith("h264 (Constrained Baseline)");
  }, 120_000);
});

describe.skipIf(!pgAvailable)("on PostgreSQL", () => {
  test("a page, a remembered number and an adapted image made at one node are found by another", async () => {
    gw?.proc.kill("SIGTERM");
    await gw?.proc.exited;
    db = await createTestDatabase();
    const node = (id: string) => startBinary(config({ store: { kind: "postgres", url: db!.url }, node: { id } }, tempDir()), freePort());

    gw = await node("n1");
    await send("0012025550151");
    await waitFor("n1's SubmitReq", () => submitsTo("0151").length === 1, 60_000);
    const refused = await sendFallback("0044770090019077");
    expect(refused.reason).toStartWith("mm7:2002");
    gw.proc.kill("SIGTERM");
    expect(await gw.proc.exited).toBe(0);

    gw = await node("n2");
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const [{ token }] = (await sql`SELECT token FROM media_links WHERE message_id = ${refused.id}`) as unknown as [{ token: string }];
    await sql.end({ timeout: 1 });
    const image = await fetch(`${gw.url}/m/${token}/1`);
    expect(image.headers.get("content-type")).toBe("image/jpeg");
    expect((await describeImage(new Uint8Array(await image.arrayBuffer()))).height).toBe(1280);
    expect((await sendFallback("+44770090019077")).reason).toStartWith("capability:no_mms");
    expect(submitsTo("44770090019077")).toHaveLength(1);
    await send("0012025550152");
    await waitFor("n2's SubmitReq", () => submitsTo("0152").length === 1, 30_000);
    expect(submitsTo("0152")[0]!.decodedBytes).toBeLessThanOrEqual(LIMIT);
    expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/^gateway_media_adaptations_total 0$/m);
  }, 120_000);
});
