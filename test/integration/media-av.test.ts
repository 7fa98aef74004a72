// Audio and video adapted by the host's ffmpeg, end to end through a real gateway: clips made here by
// ffmpeg, served from a loopback server, submitted to the MMSC stub (which refuses anything over its
// limit); and the same gateway without ffmpeg, where media passes through only when it already fits.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startApp, type App } from "../../src/app.ts";
import { ACME_SECRET, post, sendBody, tempDir, testConfig, waitFor } from "../support/app.ts";
import { describeAv, describeWithFfmpeg, toneOgg, toneWav, videoClip } from "../support/av.ts";
import { MM7_INBOUND } from "../support/config-doc.ts";
import { startSink } from "../support/sink.ts";
import { ADMIN_TOKEN, bearer } from "../support/ops.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";

const suite = describeWithFfmpeg("media-av.test.ts");
const LIMIT = 300 * 1024;
const files = new Map<string, { bytes: Uint8Array; type: string }>();
const mediaServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const f = files.get(new URL(req.url).pathname);
    return f ? new Response(f.bytes, { headers: { "content-type": f.type } }) : new Response("no", { status: 404 });
  },
});
const mediaUrl = (path: string) => `http://127.0.0.1:${mediaServer.port}${path}`;
const sink = startSink(ACME_SECRET);
let stub: MmscStub;
const apps: App[] = [];

const gateway = async (more: Record<string, unknown> = {}) => {
  const config = testConfig(tempDir(), {
    carriers: { mms: { kind: "mm7", url: stub.url, max_message_bytes: LIMIT } },
    inbound: { mm7: MM7_INBOUND },
    admin: { token: ADMIN_TOKEN },
    ...more,
  });
  const app = await startApp(config, { log: (await import("pino")).default({ level: "silent" }) });
  apps.push(app);
  return app;
};

suite("audio and video", () => {
  beforeAll(async () => {
    files.set("/clip.mov", { bytes: await videoClip(6), type: "video/quicktime" });
    files.set("/small.mp4", { bytes: await videoClip(1, "mp4", "160x90"), type: "video/mp4" });
    files.set("/jingle.wav", { bytes: await toneWav(30), type: "audio/wav" });
    files.set("/note.ogg", { bytes: await toneOgg(5), type: "audio/ogg" });
    stub = await startMmscStub({ maxMessageBytes: LIMIT, scenario: () => ({ kind: "ok" }) });
  }, 120_000);

  afterAll(async () => {
    for (const app of apps) await app.stop();
    await stub.stop();
    sink.stop();
    mediaServer.stop(true);
  });

  const submitsTo = (to: string) => stub.received.filter((r) => r.to[0]!.value.endsWith(to));
  const send = (app: App, to: string, path: string, more: Record<string, unknown> = {}) =>
    post(app.url, "/mms", sendBody({ to, callback_url: sink.url, media: [{ url: mediaUrl(path) }], ...more }));

  let withFfmpeg: App;
  describe("with ffmpeg", () => {
    let app: App;
    beforeAll(async () => {
      app = withFfmpeg = await gateway();
    });

    test("a 6 s 1280×720 QuickTime clip of megabytes: one SubmitReq within the limit, MP4 with H.264 baseline and AAC, 16:9 kept", async () => {
      const source = await describeAv(files.get("/clip.mov")!.bytes);
      expect(source.video!.codec).toStartWith("h264 (High)");
      expect(files.get("/clip.mov")!.bytes.byteLength).toBeGreaterThan(10 * LIMIT);
      await send(app, "0012025550161", "/clip.mov");
      const [submit] = await waitFor("the SubmitReq", () => submitsTo("0161").length === 1 && submitsTo("0161"), 60_000);
      expect(stub.errors).toEqual([]);
      expect(submit!.decodedBytes).toBeLessThanOrEqual(LIMIT);
      expect(submit!.media.map((m) => [m.contentType, m.contentLocation])).toEqual([["video/mp4", "clip.mp4"]]);
      const sent = await describeAv(submit!.media[0]!.bytes);
      expect(sent.video!.codec).toStartWith("h264 (Constrained Baseline)");
      expect(sent.video!.width).toBeLessThanOrEqual(640);
      expect(sent.video!.width / sent.video!.height).toBeCloseTo(16 / 9, 1);
      expect(sent.audio).toStartWith("aac");
      expect(sent.seconds).toBeCloseTo(6, 0);
    }, 90_000);

    test("30 s of WAV over the limit and a small Ogg Opus (a type MMS does not take): AAC in 3GP, whole length, within the limit", async () => {
      expect(files.get("/jingle.wav")!.bytes.byteLength).toBeGreaterThan(LIMIT);
      expect(files.get("/note.ogg")!.bytes.byteLength).toBeLessThan(LIMIT);
      await send(app, "0012025550162", "/jingle.wav");
      await send(app, "0012025550163", "/note.ogg");
      for (const [to, name, seconds] of [["0162", "jingle.3gp", 30], ["0163", "note.3gp", 5]] as const) {
        const [submit] = await waitFor(`the SubmitReq to ${to}`, () => submitsTo(to).length === 1 && submitsTo(to), 60_000);
        expect(submit!.decodedBytes).toBeLessThanOrEqual(LIMIT);
        expect(submit!.media.map((m) => [m.contentType, m.contentLocation])).toEqual([["audio/3gpp", name]]);
        const sent = await describeAv(submit!.media[0]!.bytes);
        expect(sent.audio).toStartWith("aac");
        expect(sent.video).toBeUndefined();
        expect(sent.seconds).toBeCloseTo(seconds, 0);
      }
      expect(stub.errors).toEqual([]);
    }, 90_000);
  });

  describe("without ffmpeg", () => {
    const missing = 'ffmpeg not found (media.ffmpeg = "/nonexistent/ffmpeg")';
    let app: App;
    beforeAll(async () => {
      app = await gateway({ media: { ffmpeg: "/nonexistent/ffmpeg" } });
    });

    test("a video that fits passes through untouched; audio over the limit, and audio of a type MMS does not take, fall back with a reason saying ffmpeg is missing", async () => {
      await send(app, "0012025550171", "/small.mp4");
      const [submit] = await waitFor("the SubmitReq", () => submitsTo("0171").length === 1 && submitsTo("0171"), 30_000);
      expect(submit!.media[0]!.contentType).toBe("video/mp4");
      expect(Buffer.from(submit!.media[0]!.bytes).equals(Buffer.from(files.get("/small.mp4")!.bytes))).toBe(true);

      const wav = await send(app, "0012025550172", "/jingle.wav", { fallback_text: "Hear our jingle" });
      const ogg = await send(app, "0012025550173", "/note.ogg", { fallback_text: "Hear our note" });
      const reason = async (id: string) => (await waitFor(`${id}'s event`, () => sink.byMessage(id).length > 0 && sink.byMessage(id)))[0]!.fallback_reason;
      expect(await reason(wav.json.id)).toStartWith(`media:cannot_fit: part 1 (jingle.wav, audio/wav, ${files.get("/jingle.wav")!.bytes.byteLength} bytes) cannot be converted: ${missing}`);
      expect(await reason(ogg.json.id)).toStartWith(`media:unsupported_type: part 1 (note.ogg, audio/ogg, ${files.get("/note.ogg")!.bytes.byteLength} bytes): audio/ogg is not a type MMS handsets take, and it cannot be converted: ${missing}`);
      expect(submitsTo("0172").length + submitsTo("0173").length).toBe(0);
    }, 30_000);

    test("/readyz and the status page name ffmpeg missing on the MMS carrier that adapts media, and stay ready; not when ffmpeg is found or no carrier adapts", async () => {
      const ready = (await (await fetch(`${app.url}/readyz`)).json()) as { ready: boolean; carriers: { name: string; detail: string }[] };
      expect(ready.ready).toBe(true);
      expect(ready.carriers.find((c) => c.name === "mms")!.detail).toContain(`${missing}: audio and video over its limit cannot be converted`);
      expect(ready.carriers.filter((c) => c.detail.includes("ffmpeg")).map((c) => c.name)).toEqual(["mms"]);
      const status = await (await fetch(`${app.url}/status`, { headers: bearer() })).text();
      expect(status.includes(`${missing.replaceAll('"', "&quot;")}: audio and video over its limit cannot be converted`)).toBe(true);

      const passThrough = await gateway({ media: { ffmpeg: "/nonexistent/ffmpeg" }, carriers: { mms: { adapt_media: false } } });
      expect(await (await fetch(`${passThrough.url}/readyz`)).text()).not.toContain("ffmpeg");
      expect(await (await fetch(`${withFfmpeg.url}/readyz`)).text()).not.toContain("ffmpeg");
    }, 30_000);
  });
});
