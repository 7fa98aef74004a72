// The ffmpeg converter (pipeline/transcode.ts) on hostile input, with the host's ffmpeg and real files.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { createFfmpeg } from "../../src/pipeline/transcode.ts";
import { tempDir } from "../support/app.ts";
import { describeWithFfmpeg, makeAv } from "../support/av.ts";

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
});
