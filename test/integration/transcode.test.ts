// The ffmpeg converter (pipeline/transcode.ts) on hostile input, with the host's ffmpeg and real files.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { createFfmpeg } from "../../src/pipeline/transcode.ts";
import { tempDir } from "../support/app.ts";
import { describeWithFfmpeg, makeAv, toneWav } from "../support/av.ts";

describeWithFfmpeg("transcode.test.ts")("ffmpeg on hostile media", () => {
  test("an HLS playlist sent as audio naming a local media file is refused, not converted from that file", async () => {
    const dir = tempDir();
    // A file of the host's that no sender may read: MPEG-TS, which ffmpeg's HLS reader takes as a segment.
    const secret = join(dir, "secret.ts");
    await Bun.write(secret, await makeAv(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "3", "-c:a", "aac"], "mpegts"));
    const playlist = new TextEncoder().encode(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\n${secret}\n#EXT-X-ENDLIST\n`);
    const av = createFfmpeg({ command: "ffmpeg", timeoutMs: 30_000, maxInputBytes: 10_000_000, tmpDir: join(dir, "av") });
    const r = await av.convert(playlist, "audio/mpeg", { maxBytes: 300 * 1024, maxEdge: 640 });
    expect("unfit" in r).toBe(true);
  }, 60_000);

  test("convert_timeout_ms bounds the whole conversion, not each ffmpeg run: the encode after a probe that used it up is not started", async () => {
    const dir = tempDir();
    const wav = await toneWav(5);
    const limit = 60_000;
    // A clock that moves 1.2 × the limit at each reading: the probe (one reading before, one after) used it all up.
    let clock = 0;
    const now = () => (clock += 1.2 * limit);
    const av = createFfmpeg({ command: "ffmpeg", timeoutMs: limit, maxInputBytes: 10_000_000, tmpDir: join(dir, "av"), now });
    const r = await av.convert(wav, "audio/wav", { maxBytes: 300 * 1024, maxEdge: 640 });
    expect(r).toEqual({ unfit: `ffmpeg ran out of convert_timeout_ms (${limit} ms for the whole conversion) converting it` });
    // With the clock still, the same file converts: what ended it above was the time used alone.
    const still = createFfmpeg({ command: "ffmpeg", timeoutMs: limit, maxInputBytes: 10_000_000, tmpDir: join(dir, "av"), now: () => 0 });
    expect(await still.convert(wav, "audio/wav", { maxBytes: 300 * 1024, maxEdge: 640 })).toMatchObject({ contentType: "audio/3gpp" });
  }, 60_000);

  test("waiting for a free ffmpeg does not count: clips queued behind others each get their whole time", async () => {
    const dir = tempDir();
    const clips = await Promise.all(Array.from({ length: 6 }, (_, i) => toneWav(3 + i)));
    // One ffmpeg at a time, and a clock that moves 1 s at each reading: every run takes 1 s by it, a conversion (probe
    // and one encode) 2 s of its 5. The clip whose encode waits behind the other five probes must not count that wait.
    let clock = 0;
    const av = createFfmpeg({ command: "ffmpeg", timeoutMs: 5_000, maxInputBytes: 10_000_000, tmpDir: join(dir, "av"), now: () => (clock += 1_000), slots: 1 });
    const results = await Promise.all(clips.map((c) => av.convert(c, "audio/wav", { maxBytes: 300 * 1024, maxEdge: 640 })));
    expect(results.map((r) => ("unfit" in r ? r.unfit : r.contentType))).toEqual(Array(6).fill("audio/3gpp"));
  }, 120_000);

  test("a run still going at the deadline is killed and named", async () => {
    const dir = tempDir();
    const av = createFfmpeg({ command: "ffmpeg", timeoutMs: 1, maxInputBytes: 10_000_000, tmpDir: join(dir, "av") });
    const r = await av.convert(await toneWav(5), "audio/wav", { maxBytes: 300 * 1024, maxEdge: 640 });
    expect(r).toEqual({ unfit: "ffmpeg ran out of convert_timeout_ms (1 ms for the whole conversion) reading it" });
  }, 60_000);
});
