// Peak memory of fetching and adapting one ~10 MB photo JPEG (to ≤ 300 KB, ≤ 1280 px), the source streamed
// to a file under the data directory (what the gateway does) beside the same source held whole in memory
// (the ceiling: what it did before), each in its own child process so its peak RSS (VmHWM) is its own.
// `bun bench/media-rss.ts`, or `make bench` (section "media-rss").
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { MediaAdapter, type AdaptResult } from "../src/pipeline/adapt.ts";
import { createEgress } from "../src/egress/fetch.ts";
import { createSharpCodec, loadSharp } from "../src/pipeline/image-codec.ts";
import { createMediaFetcher } from "../src/pipeline/media.ts";
import { mm7Defaults, namespaceUri } from "../adapters/mm7/settings.ts";
import { measureSubmitReq } from "../adapters/mm7/submit-message.ts";

const LIMIT = 300 * 1024;
const RUNS = Number(process.env.MEDIA_RSS_RUNS ?? 3);
type Mode = "spooled" | "in-memory";

const vmKb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0);

/** In the child: fetch the URL and adapt it once; prints the RSS before, the peak, and the result's size. */
async function child(url: string, mode: Mode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "media-rss-"));
  await loadSharp(); // libvips loaded before the baseline, as in a gateway that has adapted before
  Bun.gc(true);
  const before = vmKb("VmRSS");
  const fetcher = createMediaFetcher({
    egress: createEgress({ allow: ["127.0.0.0/8"] }),
    maxBytes: 16 * 1024 * 1024,
    timeoutMs: 60_000,
    maxRedirects: 0,
    cacheEntries: 10,
    cacheTtlMs: 60_000,
    ...(mode === "spooled" ? { spoolDir: join(dir, "fetch") } : {}),
  });
  const part = await fetcher.get({ url });
  if (!("bytes" in part)) throw new Error(part.message);
  const store = new Map<string, AdaptResult>();
  const adapter = new MediaAdapter(createSharpCodec(), { get: async (h, p) => store.get(h + p) ?? null, put: async (h, p, r) => void store.set(h + p, r) });
  const fitted = await adapter.fit([part], {
    carrier: "bench",
    maxMessageBytes: LIMIT,
    maxEdge: 1280,
    measure: (media) => measureSubmitReq(mm7Defaults, namespaceUri(mm7Defaults), { messageId: "m", from: "1", to: "2", subject: "", text: "", media }, 0),
  });
  if ("code" in fitted) throw new Error(fitted.message);
  console.log(JSON.stringify({ beforeMb: before / 1024, peakMb: vmKb("VmHWM") / 1024, outBytes: fitted.parts[0]!.bytes.byteLength, onDisk: Boolean(part.path) }));
  rmSync(dir, { recursive: true, force: true });
}

export interface RssResult {
  sourceBytes: number;
  runs: Record<Mode, { beforeMb: number; peakMb: number; outBytes: number; onDisk: boolean }[]>;
}

export async function benchMediaRss(): Promise<RssResult> {
  // ~10 MB: a 4500×3000 photo-like JPEG at quality 93 with grain.
  const w = 4500;
  const h = 3000;
  const px = Buffer.alloc(w * h * 3);
  let s = 7;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = ((i / 3) % w) * 0.05 + (s >>> 25);
  }
  const source = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 93 }).toBuffer();
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(source, { headers: { "content-type": "image/jpeg" } }) });
  const runs: RssResult["runs"] = { spooled: [], "in-memory": [] };
  try {
    for (let r = 0; r < RUNS; r++) {
      for (const mode of ["spooled", "in-memory"] as const) {
        const proc = Bun.spawn([process.execPath, import.meta.path, "--child", `http://127.0.0.1:${server.port}/photo.jpg`, mode], { stdout: "pipe", stderr: "inherit" });
        const out = await new Response(proc.stdout).text();
        if ((await proc.exited) !== 0) throw new Error(`child ${mode} failed`);
        runs[mode].push(JSON.parse(out.trim().split("\n").pop()!));
      }
    }
  } finally {
    server.stop(true);
  }
  return { sourceBytes: source.byteLength, runs };
}

if (import.meta.main) {
  if (process.argv[2] === "--child") await child(process.argv[3]!, process.argv[4] as Mode);
  else {
    const r = await benchMediaRss();
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`source ${(r.sourceBytes / 1048576).toFixed(1)} MB JPEG → ≤ ${LIMIT / 1024} KB, ${RUNS} runs each, median (min–max):`);
    for (const mode of ["spooled", "in-memory"] as const) {
      const peaks = r.runs[mode].map((x) => x.peakMb);
      const growth = r.runs[mode].map((x) => x.peakMb - x.beforeMb);
      console.log(
        `${mode.padEnd(10)} peak RSS ${med(peaks).toFixed(0)} MB (${Math.min(...peaks).toFixed(0)}–${Math.max(...peaks).toFixed(0)}), ` +
          `growth over the baseline ${med(growth).toFixed(0)} MB (${Math.min(...growth).toFixed(0)}–${Math.max(...growth).toFixed(0)}), ` +
          `source on disk: ${r.runs[mode][0]!.onDisk}, adapted to ${r.runs[mode][0]!.outBytes} bytes`,
      );
    }
  }
}
