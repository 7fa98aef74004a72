// Audio and video converted for an MMS by the host's ffmpeg (Debian's package; optional, found by path):
// video to MP4 with H.264 baseline and AAC, audio to AAC in 3GP, at the bitrate that makes the part fit
// its share of the carrier's limit. ffmpeg runs as a child process with an argument list (never a shell),
// a time limit and an input size limit, on files in a private temp directory.
import { accessSync, constants, mkdirSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";

export interface Converted {
  contentType: string;
  bytes: Uint8Array;
}

export interface AvConverter {
  /** Why nothing can be converted (ffmpeg not found), or null when it can. */
  readonly missing: string | null;
  /** The part as a type the carrier takes within maxBytes, or why it cannot be; `source` is its bytes or the path of a file holding them. */
  convert(source: Uint8Array | string, sourceType: string, o: { maxBytes: number; maxEdge: number }): Promise<Converted | { unfit: string }>;
}

export interface FfmpegOptions {
  /** `media.ffmpeg`: a name looked up on PATH, or a path; "" = no converter. */
  command: string;
  /** `media.convert_timeout_ms`: for the whole conversion, the time ffmpeg runs summed over the probe and every encode. */
  timeoutMs: number;
  maxInputBytes: number;
  /** Where input and output files live while ffmpeg runs (under the data directory). */
  tmpDir: string;
  /** The clock each run's time is read from, in ms (tests move it). */
  now?: () => number;
  /** ffmpeg processes at once (default: one per core). */
  slots?: number;
}

/** The executable `command` names, or null. */
function findFfmpeg(command: string): string | null {
  if (!command) return null;
  if (!command.includes("/")) return Bun.which(command);
  try {
    accessSync(command, constants.X_OK);
    return command;
  } catch {
    return null;
  }
}

// Audio shares the budget with the picture; below these a video is not worth watching.
const VIDEO_AUDIO_KBPS = 24;
const MIN_VIDEO_KBPS = 24;
const AUDIO_KBPS = [48, 32, 24, 16, 12, 8];
/** What a muxer adds beyond the streams' bitrates (headers, index), as a share and a floor. */
const CONTAINER_SHARE = 0.08;
const CONTAINER_BYTES = 4096;
/** Attempts at a lower bitrate when an encode comes out over the budget. */
const VIDEO_ATTEMPTS = 3;
/**
 * The demuxers of the types sent here (mov also reads MP4, 3GP and M4A; matroska reads WebM). Any other is
 * refused: ffmpeg picks the demuxer by the bytes, and a playlist (HLS, DASH, concat) sent as audio would
 * have it read the files it names, local ones included, and send them on.
 */
const INPUT_FORMATS = "mov,matroska,ogg,mp3,aac,wav,amr";

export function createFfmpeg(o: FfmpegOptions): AvConverter {
  const now = o.now ?? (() => performance.now());
  const executable = findFfmpeg(o.command);
  const missing = executable
    ? null
    : o.command
      ? `ffmpeg not found (media.ffmpeg = "${o.command}")`
      : `no converter (media.ffmpeg = "")`;

  // A campaign's distinct clips must not start one ffmpeg each at once: one per core, the rest wait their turn.
  // (A queue of resolvers, written here: a semaphore library for ten lines is not worth a dependency.)
  let running = 0;
  const waiting: (() => void)[] = [];
  const slots = Math.max(1, o.slots ?? availableParallelism());

  /**
   * Runs ffmpeg with `args`; its exit code and the end of what it printed. Each run may take what the conversion's
   * earlier runs left of its time and is killed at that; waiting for a slot does not count (a campaign's other clips
   * queued ahead must not use up this one's time).
   */
  async function run(args: string[], conversion: { spentMs: number }): Promise<{ code: number; log: string; timedOut: boolean }> {
    // A finished run hands its slot straight to the next waiter, so none is taken twice.
    if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      const left = o.timeoutMs - conversion.spentMs;
      if (left <= 0) return { code: -1, log: "", timedOut: true };
      const started = now();
      try {
        return await runNow(args, left);
      } finally {
        conversion.spentMs += now() - started;
      }
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  }

  async function runNow(args: string[], timeoutMs: number): Promise<{ code: number; log: string; timedOut: boolean }> {
    const proc = Bun.spawn([executable!, "-hide_banner", "-nostdin", "-y", "-format_whitelist", INPUT_FORMATS, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, timeoutMs);
    // Only the tail is kept while reading: input that makes ffmpeg complain at every frame must not grow memory.
    let log = "";
    const text = new TextDecoder();
    for await (const chunk of proc.stderr) log = (log + text.decode(chunk, { stream: true })).slice(-4000);
    const code = await proc.exited;
    clearTimeout(timer);
    return { code, log, timedOut };
  }

  const lastLine = (log: string) => log.trim().split("\n").pop() ?? "";

  return {
    missing,
    async convert(source, sourceType, limits) {
      if (!executable) return { unfit: missing! };
      const size = typeof source === "string" ? Bun.file(source).size : source.byteLength;
      if (size > o.maxInputBytes) return { unfit: `${size} bytes is over the converter's input limit of ${o.maxInputBytes}` };
      mkdirSync(o.tmpDir, { recursive: true, mode: 0o700 });
      const work = join(o.tmpDir, `av-${crypto.randomUUID()}`);
      mkdirSync(work, { mode: 0o700 });
      const conversion = { spentMs: 0 };
      try {
        const input = typeof source === "string" ? source : join(work, "in");
        if (typeof source !== "string") await Bun.write(input, source);
        // ffmpeg with an input and no output prints the input's description and exits 1: the probe.
        const probe = await run(["-i", input], conversion);
        if (probe.timedOut) return { unfit: `ffmpeg ran out of convert_timeout_ms (${o.timeoutMs} ms for the whole conversion) reading it` };
        const duration = /Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(probe.log);
        const hasVideo = /Stream #\S+.*: Video: (?!mjpeg|png)/.test(probe.log);
        const hasAudio = /Stream #\S+.*: Audio: /.test(probe.log);
        if (!duration || (!hasVideo && !hasAudio)) return { unfit: `ffmpeg cannot read it as ${sourceType}: ${lastLine(probe.log)}` };
        const seconds = Math.max(0.1, Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]));
        const output = join(work, "out");
        const payloadBits = (limits.maxBytes * (1 - CONTAINER_SHARE) - CONTAINER_BYTES) * 8;

        const encode = async (args: string[]): Promise<Uint8Array | { unfit: string }> => {
          // -fs stops a runaway encode from filling the disk; an output cut by it is over the budget anyway.
          const r = await run(["-i", input, "-map_metadata", "-1", ...args, "-fs", String(limits.maxBytes * 2), output], conversion);
          if (r.timedOut) return { unfit: `ffmpeg ran out of convert_timeout_ms (${o.timeoutMs} ms for the whole conversion) converting it` };
          if (r.code !== 0) return { unfit: `ffmpeg failed converting it: ${lastLine(r.log)}` };
          return new Uint8Array(await Bun.file(output).arrayBuffer());
        };

        if (hasVideo && sourceType.startsWith("video/")) {
          let videoKbps = Math.floor(payloadBits / seconds / 1000) - (hasAudio ? VIDEO_AUDIO_KBPS : 0);
          for (let attempt = 0; attempt < VIDEO_ATTEMPTS; attempt++, videoKbps = Math.floor(videoKbps * 0.8)) {
            if (videoKbps < MIN_VIDEO_KBPS) break;
            const edge = Math.min(limits.maxEdge, videoKbps >= 600 ? 640 : videoKbps >= 250 ? 480 : videoKbps >= 100 ? 320 : 176);
            const out = await encode([
              "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.0", "-pix_fmt", "yuv420p", "-preset", "veryfast",
              "-b:v", `${videoKbps}k`, "-maxrate", `${videoKbps}k`, "-bufsize", `${videoKbps * 2}k`,
              // Within edge × edge, aspect kept, even sides (4:2:0 needs them).
              "-vf", `scale=w=${edge}:h=${edge}:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2`,
              ...(hasAudio ? ["-c:a", "aac", "-ac", "1", "-b:a", `${VIDEO_AUDIO_KBPS}k`] : ["-an"]),
              "-movflags", "+faststart", "-f", "mp4",
            ]);
            if (!(out instanceof Uint8Array)) return out;
            if (out.byteLength <= limits.maxBytes) return { contentType: "video/mp4", bytes: out };
          }
          return { unfit: `a ${seconds.toFixed(1)} s video does not fit ${limits.maxBytes} bytes at ${MIN_VIDEO_KBPS} kbit/s or more` };
        }
        if (!hasAudio) return { unfit: `ffmpeg finds no audio in this ${sourceType}` };
        for (const kbps of AUDIO_KBPS.filter((k) => k * 1000 * seconds <= payloadBits)) {
          const out = await encode(["-vn", "-c:a", "aac", "-ac", "1", "-b:a", `${kbps}k`, ...(kbps <= 16 ? ["-ar", "16000"] : []), "-f", "3gp"]);
          if (!(out instanceof Uint8Array)) return out;
          if (out.byteLength <= limits.maxBytes) return { contentType: "audio/3gpp", bytes: out };
        }
        return { unfit: `${seconds.toFixed(1)} s of audio does not fit ${limits.maxBytes} bytes at ${AUDIO_KBPS.at(-1)} kbit/s or more` };
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}
