// Media adapted to the MMSC's limit, end to end through a real gateway: real images made here, served
// from a loopback server, submitted to the MMSC stub (which refuses anything over its limit and parses
// strictly), the fallback SMS over real SMPP, the hosted page over HTTP, capability memory across a restart.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startApp, type App } from "../../src/app.ts";
import { ACME_SECRET, post, sendBody, tempDir, testConfig, waitFor } from "../support/app.ts";
import { MM7_INBOUND } from "../support/config-doc.ts";
import { amrAudio, animatedGif, describeImage, heicHeader, largePng, rotatedJpeg, webpPhoto } from "../support/images.ts";
import { ADMIN_TOKEN, bearer } from "../support/ops.ts";
import { startSink } from "../support/sink.ts";
import { extractChild, validateMm7 } from "../support/mm7-xsd.ts";
import { startMmscStub, type MmscStub, type ParsedSubmit } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc } from "../peers/smpp-sim.ts";

const LIMIT = 100 * 1024;
const EDGE = 1024;
const NS = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";

const files = new Map<string, { bytes: Uint8Array; type: string }>();
const hits = new Map<string, number>();
const mediaServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const f = files.get(path);
    return f ? new Response(f.bytes, { headers: { "content-type": f.type } }) : new Response("no", { status: 404 });
  },
});
const mediaUrl = (path: string) => `http://127.0.0.1:${mediaServer.port}${path}`;

const sink = startSink(ACME_SECRET);
let stub: MmscStub;
let smsc: Smsc;
let smsc2: Smsc;
let app: App;
const dir = tempDir();

const config = (more: { carriers?: Record<string, unknown>; routes?: unknown[] } = {}) =>
  testConfig(dir, {
    admin: { token: ADMIN_TOKEN },
    carriers: {
      mms: { kind: "mm7", url: stub.url, max_message_bytes: LIMIT, image_max_edge_px: EDGE },
      sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, system_id: "gw", password: "pw", tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 500 },
      // A second SMSC that takes one part per message: routes send +1202555913… there.
      sms_one_part: { kind: "smpp", host: "127.0.0.1", port: smsc2.port, system_id: "gw2", password: "pw", tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 500, max_parts: 1 },
      ...more.carriers,
    },
    routes: [...(more.routes ?? []), { channel: "sms", prefixes: ["1202555913"], carriers: ["sms_one_part"] }],
    media_link: { base_url: "https://m.example.test/p" },
    inbound: { mm7: MM7_INBOUND },
    // Audio and video conversion is media-av.test.ts's; here audio is what cannot be made to fit.
    media: { ffmpeg: "" },
  });

async function restart(): Promise<void> {
  await app?.stop();
  app = await startApp(config(), { log: (await import("pino")).default({ level: "silent" }) });
  await waitFor("SMPP bound", () => smsc.openSessions > 0 && smsc2.openSessions > 0);
}

beforeAll(async () => {
  files.set("/photo.jpg", { bytes: await rotatedJpeg(), type: "image/jpeg" });
  files.set("/banner.png", { bytes: await largePng(), type: "image/png" });
  files.set("/anim.gif", { bytes: await animatedGif(), type: "image/gif" });
  files.set("/campaign.jpg", { bytes: await rotatedJpeg(2400, 1600), type: "image/jpeg" });
  files.set("/voice.amr", { bytes: amrAudio(150_000), type: "audio/amr" });
  files.set("/sale.webp", { bytes: await webpPhoto(), type: "image/webp" });
  files.set("/icon.webp", { bytes: await webpPhoto(240, 160), type: "image/webp" });
  // Served untyped: the bytes alone say HEIC.
  files.set("/IMG_0001.HEIC", { bytes: heicHeader(), type: "application/octet-stream" });
  // Recipients ending in 2002: the MMSC says the number cannot get MMS.
  stub = await startMmscStub({
    maxMessageBytes: LIMIT,
    scenario: (req) => (req.to[0]!.value.endsWith("2002") ? { kind: "status", code: 2002, text: "Address Error" } : { kind: "ok" }),
  });
  smsc = await startSmsc({ sendReceipts: true, receiptDelayMs: 20, idBase: "dec" });
  smsc2 = await startSmsc({ sendReceipts: true, receiptDelayMs: 20, idBase: "dec" });
  await restart();
}, 180_000);

afterAll(async () => {
  await app.stop();
  await stub.stop();
  await smsc.stop();
  await smsc2.stop();
  sink.stop();
  mediaServer.stop(true);
});

const submitsTo = (to: string) => stub.received.filter((r) => r.to[0]!.value.endsWith(to));
const smsTo = (to: string) => smsc.submits.filter((s) => s.destAddr.endsWith(to));
const smsText = (to: string) => Buffer.concat(smsTo(to).map((s) => s.body)).toString("latin1");

async function schemaValid(r: ParsedSubmit): Promise<void> {
  const [checked] = await validateMm7([{ name: r.transactionId, xml: extractChild(r.soapXml, "Body") }], NS);
  expect(checked!.errors).toEqual([]);
  expect(checked!.valid).toBe(true);
}

async function metric(name: string): Promise<number> {
  const text = await app.metrics.registry.metrics();
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? 0);
}

describe("adaptation to the MMSC's limit", () => {
  test("a 3000×2000 JPEG turned by EXIF and a large PNG: one SubmitReq within the limit, schema-valid, upright, aspect kept, metadata gone", async () => {
    const photo = await describeImage(files.get("/photo.jpg")!.bytes);
    expect(files.get("/photo.jpg")!.bytes.byteLength + files.get("/banner.png")!.bytes.byteLength).toBeGreaterThan(10 * LIMIT);
    expect(photo.orientation).toBe(6);
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550111", callback_url: sink.url, media: [{ url: mediaUrl("/photo.jpg") }, { url: mediaUrl("/banner.png") }] }));
    expect(r.status).toBe(200);
    const [submit] = await waitFor("the SubmitReq", () => submitsTo("0111").length === 1 && submitsTo("0111"));
    expect(stub.errors).toEqual([]);
    expect(submit!.decodedBytes).toBeLessThanOrEqual(LIMIT);
    await schemaValid(submit!);
    expect(submit!.media.map((m) => m.contentType)).toEqual(["image/jpeg", "image/jpeg"]);
    expect(submit!.media.map((m) => m.contentLocation)).toEqual(["photo.jpg", "banner.jpg"]);

    const shownPhoto = await describeImage(submit!.media[0]!.bytes);
    // Stored 3000×2000 with orientation 6 = shown 2000×3000: upright now, with no orientation left to apply.
    expect(shownPhoto.height).toBe(EDGE);
    expect(shownPhoto.width).toBeCloseTo((EDGE * 2) / 3, -1);
    expect(shownPhoto.orientation).toBeUndefined();
    expect(shownPhoto.exif).toBeUndefined();
    expect(Buffer.from(submit!.media[0]!.bytes).includes("secret-owner-tag")).toBe(false);
    const banner = await describeImage(submit!.media[1]!.bytes);
    expect(banner.format).toBe("jpeg");
    expect(Math.max(banner.width, banner.height)).toBeLessThanOrEqual(EDGE);
    expect(banner.width / banner.height).toBeCloseTo(1.5, 1);
  }, 60_000);

  test("an animated GIF: still animated with fewer frames or colours, or its first frame, within the limit, square", async () => {
    const source = await describeImage(files.get("/anim.gif")!.bytes);
    expect(source.pages).toBe(12);
    expect(files.get("/anim.gif")!.bytes.byteLength).toBeGreaterThan(LIMIT);
    await post(app.url, "/mms", sendBody({ to: "0012025550112", callback_url: sink.url, media: [{ url: mediaUrl("/anim.gif") }] }));
    const [submit] = await waitFor("the SubmitReq", () => submitsTo("0112").length === 1 && submitsTo("0112"));
    expect(stub.errors).toEqual([]);
    expect(submit!.decodedBytes).toBeLessThanOrEqual(LIMIT);
    const gif = await describeImage(submit!.media[0]!.bytes);
    expect(gif.width).toBe(gif.height);
    if (gif.format === "gif") expect(gif.pages).toBeGreaterThan(1);
    else expect(gif.format).toBe("jpeg");
  }, 60_000);

  test("WebP, large and small: converted to JPEG (a type handsets take) within the limit, aspect kept", async () => {
    expect(files.get("/sale.webp")!.bytes.byteLength).toBeGreaterThan(LIMIT);
    await post(app.url, "/mms", sendBody({ to: "0012025550113", callback_url: sink.url, media: [{ url: mediaUrl("/sale.webp") }] }));
    await post(app.url, "/mms", sendBody({ to: "0012025550114", callback_url: sink.url, media: [{ url: mediaUrl("/icon.webp") }] }));
    const [large] = await waitFor("the large WebP's SubmitReq", () => submitsTo("0113").length === 1 && submitsTo("0113"));
    const [small] = await waitFor("the small WebP's SubmitReq", () => submitsTo("0114").length === 1 && submitsTo("0114"));
    expect(stub.errors).toEqual([]);
    for (const [submit, width, height] of [[large!, EDGE, (EDGE * 2) / 3], [small!, 240, 160]] as const) {
      expect(submit.decodedBytes).toBeLessThanOrEqual(LIMIT);
      await schemaValid(submit);
      expect(submit.media.map((m) => [m.contentType, m.contentLocation])).toEqual([["image/jpeg", submit === large ? "sale.jpg" : "icon.jpg"]]);
      const shown = await describeImage(submit.media[0]!.bytes);
      expect(shown.format).toBe("jpeg");
      expect([shown.width, Math.round(shown.height)]).toEqual([width, Math.round(height)]);
    }
  }, 60_000);

  test("HEIC (the image library cannot decode it): no SubmitReq, the fallback goes out, and the reason names the type", async () => {
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550115", callback_url: sink.url, fallback_text: "See our photo", media: [{ url: mediaUrl("/IMG_0001.HEIC") }] }));
    const [event] = await waitFor("the fallback's event", () => sink.byMessage(r.json.id).length === 1 && sink.byMessage(r.json.id));
    expect(submitsTo("0115")).toEqual([]);
    expect(event!.fallback).toBe(true);
    expect(event!.fallback_reason).toStartWith("media:unsupported_type: part 1 (IMG_0001.heic, image/heic, 4096 bytes): image/heic is not a type MMS handsets take");
    expect(event!.fallback_reason).toContain("cannot decode HEIC");
  }, 30_000);

  test("one URL in 20 messages: fetched once, adapted once, the same bytes in every SubmitReq", async () => {
    const before = await metric("gateway_media_adaptations_total");
    const sends = Array.from({ length: 20 }, (_, i) =>
      post(app.url, "/mms", sendBody({ to: `00120255502${String(i).padStart(2, "0")}`, callback_url: sink.url, media: [{ url: mediaUrl("/campaign.jpg") }] })),
    );
    expect((await Promise.all(sends)).every((r) => r.status === 200)).toBe(true);
    const submits = await waitFor("20 SubmitReqs", () => {
      const s = stub.received.filter((r) => /1202555020\d$|1202555021\d$/.test(r.to[0]!.value));
      return s.length === 20 && s;
    });
    expect(stub.errors).toEqual([]);
    expect(hits.get("/campaign.jpg")).toBe(1);
    expect((await metric("gateway_media_adaptations_total")) - before).toBe(1);
    const first = Buffer.from(submits[0]!.media[0]!.bytes);
    expect(submits.every((s) => first.equals(Buffer.from(s.media[0]!.bytes)) && s.decodedBytes <= LIMIT)).toBe(true);
  }, 60_000);
});

describe("a carrier added by SIGHUP", () => {
  test("adapts to its own max_message_bytes, not to none", async () => {
    const tight = { kind: "sandbox", channel: "mms", sandbox_report_delay_ms: 20, max_message_bytes: 60 * 1024, image_max_edge_px: 640 };
    const next = config({ carriers: { tight }, routes: [{ channel: "mms", prefixes: ["49"], carriers: ["tight"] }] });
    expect(await app.reloadRouting(next)).toEqual(["carrier tight added"]);
    const r = await post(app.url, "/mms", sendBody({ to: "+4915112345678", callback_url: sink.url, media: [{ url: mediaUrl("/campaign.jpg") }] }));
    expect(r.status).toBe(200);
    await waitFor("final", () => sink.byMessage(r.json.id)[0]);
    expect(sink.byMessage(r.json.id)[0]).toMatchObject({ status: "delivered" });
    expect(await app.reloadRouting(config())).toEqual(["carrier tight removed: draining"]);
  });
});

describe("what cannot be made to fit", () => {
  test("audio over the limit: no SubmitReq; the fallback SMS goes out with a link to the hosted page; the event says why", async () => {
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550131", callback_url: sink.url, fallback_text: "Listen to our jingle", subject: "Tom & Jerry's <b>jingle</b>", media: [{ url: mediaUrl("/voice.amr") }] }));
    const events = await waitFor("final event", () => {
      const e = sink.byMessage(r.json.id).filter((x) => x.status === "delivered");
      return e.length === 1 && e;
    });
    expect(submitsTo("0131")).toEqual([]);
    expect(events[0]!.fallback).toBe(true);
    expect(events[0]!.fallback_reason).toStartWith("media:cannot_fit: part 1 (voice.amr, audio/amr, 150000 bytes) cannot be converted: no converter (media.ffmpeg = \"\")");
    const text = smsText("0131");
    expect(text).toMatch(/^Listen to our jingle\nhttps:\/\/m\.example\.test\/p\/m\/[A-Za-z0-9]{22}$/);
    const token = text.split("/").pop()!;
    const page = await fetch(`${app.url}/m/${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).not.toContain("<script");
    // The one HTML escape the status page uses too.
    expect(html).toContain("<h1>Tom &amp; Jerry&#39;s &lt;b&gt;jingle&lt;/b&gt;</h1>");
    expect(html).toContain(`<audio src="/m/${token}/1"`);
    const audio = await fetch(`${app.url}/m/${token}/1`);
    expect(audio.headers.get("content-type")).toBe("audio/amr");
    expect(Buffer.from(await audio.arrayBuffer()).equals(Buffer.from(files.get("/voice.amr")!.bytes))).toBe(true);
    const other = (token[0] === "A" ? "B" : "A") + token.slice(1);
    expect((await fetch(`${app.url}/m/${other}`)).status).toBe(404);
    expect((await fetch(`${app.url}/m/${token}/2`)).status).toBe(404);
  }, 60_000);

  test("without a fallback text the message fails and its error names the part and why", async () => {
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550132", callback_url: sink.url, fallback_text: "", media: [{ url: mediaUrl("/voice.amr") }] }));
    const [event] = await waitFor("failed event", () => sink.byMessage(r.json.id).length === 1 && sink.byMessage(r.json.id));
    expect(event!.status).toBe("failed");
    expect(event!.error!.code).toBe("media:cannot_fit");
    expect(event!.error!.message).toContain('part 1 (voice.amr, audio/amr, 150000 bytes) cannot be converted: no converter (media.ffmpeg = "")');
    expect(submitsTo("0132")).toEqual([]);
  }, 30_000);

  test("a long fallback text is shortened so that text and link fit the SMS parts limit; the link stays whole", async () => {
    const long = "Big sale this weekend only. ".repeat(60);
    const r = await post(app.url, "/mms", sendBody({ to: "0012025550133", callback_url: sink.url, fallback_text: long, media: [{ url: mediaUrl("/voice.amr") }] }));
    await waitFor("fallback SMS delivered", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"));
    expect(smsTo("0133").length).toBeLessThanOrEqual(6);
    expect(smsText("0133")).toMatch(/^Big sale this weekend only\. .*\.\.\.\nhttps:\/\/m\.example\.test\/p\/m\/[A-Za-z0-9]{22}$/s);
  }, 30_000);

  test("the text and link fit the parts limit of the SMS carrier routes choose for the fallback, not carriers.sms's", async () => {
    const r = await post(app.url, "/mms", sendBody({ to: "0012025559134", callback_url: sink.url, fallback_text: "Big sale this weekend only. ".repeat(20), media: [{ url: mediaUrl("/voice.amr") }] }));
    await waitFor("fallback SMS delivered", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"));
    expect(smsTo("9134")).toEqual([]);
    const parts = smsc2.submits.filter((s) => s.destAddr.endsWith("9134"));
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body.toString("latin1")).toMatch(/^Big sale this weekend only\. .*\.\.\.\nhttps:\/\/m\.example\.test\/p\/m\/[A-Za-z0-9]{22}$/s);
  }, 30_000);
});

describe("capability memory", () => {
  test("a number refused with 2002 goes straight to SMS in any spelling, across a restart, until forgotten", async () => {
    const send = (to: string) => post(app.url, "/mms", sendBody({ to, callback_url: sink.url, text: "hi", fallback_text: "hi by SMS" }));
    const first = await send("+4477009002002");
    await waitFor("first fallback", () => sink.byMessage(first.json.id).some((e) => e.status === "delivered"));
    expect(submitsTo("4477009002002").length).toBe(1);
    expect(sink.byMessage(first.json.id)[0]!.fallback_reason).toStartWith("mm7:2002");

    const hitsBefore = await metric("gateway_capability_hits_total");
    const second = await send("004477009002002");
    const [event] = await waitFor("second, remembered", () => sink.byMessage(second.json.id).length === 1 && sink.byMessage(second.json.id));
    expect(event!.fallback).toBe(true);
    expect(event!.fallback_reason).toStartWith("capability:no_mms: remembered until");
    expect(submitsTo("4477009002002").length).toBe(1);
    expect((await metric("gateway_capability_hits_total")) - hitsBefore).toBe(1);

    await restart();
    const third = await send("+4477009002002");
    await waitFor("third, remembered after restart", () => sink.byMessage(third.json.id).length === 1);
    expect(sink.byMessage(third.json.id)[0]!.fallback_reason).toStartWith("capability:no_mms");
    expect(submitsTo("4477009002002").length).toBe(1);

    const listed = (await (await fetch(`${app.url}/admin/capability`, { headers: bearer() })).json()) as { no_mms: { number: string; hits: number }[] };
    expect(listed.no_mms.find((e) => e.number === "4477009002002")).toMatchObject({ hits: 2 });
    expect((await fetch(`${app.url}/admin/capability/+4477009002002`, { method: "DELETE", headers: bearer() })).status).toBe(200);
    const fourth = await send("+4477009002002");
    await waitFor("fourth offered as MMS again", () => submitsTo("4477009002002").length === 2);
    await waitFor("fourth's event", () => sink.byMessage(fourth.json.id).length === 1);
  }, 60_000);
});
