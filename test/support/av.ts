// Real audio and video made in the test run by the host's ffmpeg (lavfi test sources), and what ffmpeg
// says of a file: its streams, codecs, profile and duration.
import { describe } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * `describe`, or `describe.skip` where ffmpeg is missing: locally a machine without it skips (saying so);
 * in CI (.ci/run installs it) a missing ffmpeg is a failure.
 */
export function describeWithFfmpeg(file: string): typeof describe {
  const available = Bun.which("ffmpeg") !== null;
  if (!available && !process.env.CI) console.warn(`${file}: SKIPPED — ffmpeg is missing (apt-get install -y ffmpeg)`);
  return available || process.env.CI ? describe : describe.skip;
}

async function ffmpeg(args: string[]): Promise<string> {
  const proc = Bun.spawn(["ffmpeg", "-hide_banner", "-nostdin", "-y", ...args], { stdout: "ignore", stderr: "pipe" });
  const log = await new Response(proc.stderr).text();
  await proc.exited;
  return log;
}

/** The bytes ffmpeg writes for `args` (inputs and codecs) with the output format `format`. */
export async function makeAv(args: string[], format: string): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), "av-fixture-"));
  try {
    const out = join(dir, "out");
    const log = await ffmpeg([...args, "-f", format, out]);
    const file = Bun.file(out);
    if (!(await file.exists())) throw new Error(`ffmpeg made nothing: ${log}`);
    return new Uint8Array(await file.arrayBuffer());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A `seconds` long 1280×720 clip with a tone, coded at a high quality (megabytes), in `format` (mov, mp4). */
export const videoClip = (seconds: number, format = "mov", size = "1280x720") =>
  makeAv(["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=25`, "-f", "lavfi", "-i", "sine=frequency=440", "-t", String(seconds), "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-qp", "12", "-c:a", "aac", "-b:a", "128k"], format);

/** A tone as 16-bit PCM WAV (about 88 KB a second) or Ogg Opus. */
export const toneWav = (seconds: number) => makeAv(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100", "-t", String(seconds)], "wav");
export const toneOgg = (seconds: number) => makeAv(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000", "-t", String(seconds), "-c:a", "libopus", "-b:a", "64k"], "ogg");

export interface AvDescription {
  seconds: number;
  video?: { codec: string; width: number; height: number };
  audio?: string;
}

/** What ffmpeg reads in `bytes`. */
export async function describeAv(bytes: Uint8Array): Promise<AvDescription> {
  const dir = mkdtempSync(join(tmpdir(), "av-probe-"));
  try {
    const input = join(dir, "in");
    await Bun.write(input, bytes);
    const log = await ffmpeg(["-i", input]);
    const d = /Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(log);
    const v = /Stream #\S+.*: Video: (.+?), .*?, (\d+)x(\d+)/.exec(log);
    const a = /Stream #\S+.*: Audio: ([^,]+)/.exec(log);
    return {
      seconds: d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : 0,
      ...(v ? { video: { codec: v[1]!, width: Number(v[2]), height: Number(v[3]) } } : {}),
      ...(a ? { audio: a[1]!.trim() } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
