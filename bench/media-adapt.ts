// Image libraries side by side on the adaptation the gateway does: a 3 MB photo JPEG to ≤ 300 KB at
// ≤ 1280 px, a large PNG the same way, an animated GIF to ≤ 300 KB. Each library runs in its own child
// process so its peak memory (VmHWM) is its own. `bun bench/media-adapt.ts [--sizes]`; --sizes also
// compiles a one-line program per library with `bun build --compile` and reports the binary size.
// Run from `make bench` (section "media") or alone.
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const LIMIT = 300 * 1024;
const EDGE = 1280;
const RUNS = Number(process.env.MEDIA_BENCH_RUNS ?? 3);
const root = join(import.meta.dir, "..");
const work = join(root, ".tmp", "media-bench");

type Lib = "sharp" | "napi-rs-image" | "jimp";
const libs: Lib[] = ["sharp", "napi-rs-image", "jimp"];
type Source = "jpeg" | "png" | "gif";
export interface LibResult {
  lib: Lib;
  /** Median milliseconds per image, per source, wall clock and CPU (user + system, all threads). */
  ms: Record<Source, number | null>;
  cpuMs: Record<Source, number | null>;
  out: Record<Source, number | null>;
  peakRssMb: number;
  note: string;
}

/** Deterministic photo-like pixels: gradients, a few shapes and grain, so the JPEG is as big as a real one. */
function photoPixels(w: number, h: number, seed = 7, grainAmp = 24): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  let s = seed;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const grain = grainAmp ? ((s >>> 24) % (2 * grainAmp)) : grainAmp;
      const i = (y * w + x) * 3;
      const ring = Math.sin(Math.hypot(x - w / 3, y - h / 2) / 23) * 60;
      px[i] = (x * 255) / w + grain - grainAmp + ring;
      px[i + 1] = (y * 255) / h + grain - grainAmp;
      px[i + 2] = ((x + y) * 127) / (w + h) + 64 + grain - ring;
    }
  }
  return px;
}

/** The 3 MB campaign photo: 4000×3000, quality 90 (also the source of bench/mm7-e2e.ts's 3 MB run). */
export function photoJpeg(): Promise<Uint8Array> {
  const sharp = require("sharp");
  return sharp(photoPixels(4000, 3000, 7, 6), { raw: { width: 4000, height: 3000, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

export async function makeSources(): Promise<Record<Source, Uint8Array>> {
  const sharp = require("sharp");
  const jpeg = await photoJpeg();
  const png = await sharp(photoPixels(2400, 1800, 3, 4), { raw: { width: 2400, height: 1800, channels: 3 } }).png().toBuffer();
  // A banner-like animation: smooth frames (a GIF of photo grain is not what campaigns send).
  const frames = 24;
  const fw = 600;
  const strip = new Uint8Array(fw * fw * frames * 3);
  for (let f = 0; f < frames; f++) strip.set(photoPixels(fw, fw, f + 11, 0).map((v) => (v + f * 9) & 255), f * fw * fw * 3);
  const gif = await sharp(strip, { raw: { width: fw, height: fw * frames, channels: 3, pageHeight: fw } } as never)
    .gif({ delay: 80, loop: 0 })
    .toBuffer();
  return { jpeg, png, gif };
}

// ---- one adaptation per library: quality ladder 85 → 40, then 0.75× the size, until it fits

const LADDER = [85, 75, 65, 55, 45];

async function adaptSharp(src: Uint8Array, kind: Source): Promise<number> {
  const sharp = require("sharp");
  let edge = EDGE;
  for (;;) {
    if (kind === "gif") {
      const base = sharp(src, { animated: true }).resize(edge, edge, { fit: "inside", withoutEnlargement: true });
      for (const colours of [256, 16]) {
        const out: Uint8Array = await base.clone().gif({ colours, effort: 1, dither: 0, reuse: false }).toBuffer();
        if (out.byteLength <= LIMIT) return out.byteLength;
      }
    } else {
      const base = sharp(src).rotate().resize(edge, edge, { fit: "inside", withoutEnlargement: true });
      for (const q of LADDER) {
        const out: Uint8Array = await base.clone().jpeg({ quality: q, mozjpeg: true }).toBuffer();
        if (out.byteLength <= LIMIT) return out.byteLength;
      }
    }
    edge = Math.floor(edge * 0.75);
  }
}

async function adaptNapi(src: Uint8Array, kind: Source): Promise<number> {
  const { Transformer } = require("@napi-rs/image");
  let edge = EDGE;
  for (;;) {
    for (const q of LADDER) {
      const meta = await new Transformer(src).metadata();
      const scale = Math.min(1, edge / Math.max(meta.width, meta.height));
      const out: Uint8Array = await new Transformer(src).rotate().resize(Math.round(meta.width * scale), Math.round(meta.height * scale)).jpeg(q);
      if (out.byteLength <= LIMIT) return out.byteLength;
      if (kind === "gif") break;
    }
    edge = Math.floor(edge * 0.75);
  }
}

async function adaptJimp(src: Uint8Array, kind: Source): Promise<number> {
  const { Jimp } = await import("jimp");
  let edge = EDGE;
  const image = await Jimp.read(Buffer.from(src));
  for (;;) {
    const scaled = image.clone().scaleToFit({ w: edge, h: edge });
    // Jimp's GIF decode keeps the first frame only, so it too can only send a still.
    for (const q of LADDER) {
      const out = await scaled.getBuffer("image/jpeg", { quality: q });
      if (out.byteLength <= LIMIT) return out.byteLength;
      if (kind === "gif") break;
    }
    edge = Math.floor(edge * 0.75);
  }
}

const adapters: Record<Lib, (src: Uint8Array, kind: Source) => Promise<number>> = {
  sharp: adaptSharp,
  "napi-rs-image": adaptNapi,
  jimp: adaptJimp,
};

const notes: Record<Lib, string> = {
  sharp: "libvips: animated GIF kept (frames resized, 256 → 16 colours, no dither); EXIF rotate; metadata stripped by default",
  "napi-rs-image": "no GIF codec",
  jimp: "pure JS; GIF read as first frame only → JPEG",
};

function peakRssMb(): number {
  const status = require("node:fs").readFileSync("/proc/self/status", "utf8") as string;
  return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Child mode: one library over the three sources, result as one JSON line on stdout. */
async function runOne(lib: Lib): Promise<void> {
  const sources: Record<Source, Uint8Array> = {
    jpeg: new Uint8Array(await Bun.file(join(work, "src.jpg")).arrayBuffer()),
    png: new Uint8Array(await Bun.file(join(work, "src.png")).arrayBuffer()),
    gif: new Uint8Array(await Bun.file(join(work, "src.gif")).arrayBuffer()),
  };
  const result: LibResult = { lib, ms: { jpeg: null, png: null, gif: null }, cpuMs: { jpeg: null, png: null, gif: null }, out: { jpeg: null, png: null, gif: null }, peakRssMb: 0, note: notes[lib] };
  for (const kind of ["jpeg", "png", "gif"] as Source[]) {
    const times: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      const c = process.cpuUsage();
      try {
        result.out[kind] = await adapters[lib](sources[kind], kind);
      } catch (e) {
        // The library cannot read this format at all: no figure, and the note says so.
        result.note += `; ${kind}: ${(e as Error).message.slice(0, 60)}`;
        break;
      }
      const used = process.cpuUsage(c);
      times.push(performance.now() - t);
      cpu.push((used.user + used.system) / 1000);
    }
    if (times.length === 0) continue;
    result.ms[kind] = Math.round(median(times));
    result.cpuMs[kind] = Math.round(median(cpu));
  }
  result.peakRssMb = peakRssMb();
  console.log(JSON.stringify(result));
}

/** Size of a compiled program that loads the library and does one resize, minus a bare one. */
async function binarySizes(): Promise<Record<Lib | "bare", number>> {
  const bodies: Record<Lib | "bare", string> = {
    bare: `console.log(1);`,
    sharp: `const s = require("sharp"); console.log(typeof s);`,
    "napi-rs-image": `const { Transformer } = require("@napi-rs/image"); console.log(typeof Transformer);`,
    jimp: `import { Jimp } from "jimp"; console.log(typeof Jimp);`,
  };
  const out = {} as Record<Lib | "bare", number>;
  for (const [name, body] of Object.entries(bodies) as [Lib | "bare", string][]) {
    const entry = join(root, `.tmp-media-bench-${name}.ts`);
    const bin = join(work, `bin-${name}`);
    writeFileSync(entry, body);
    // As the Makefile does: libvips embedded beside the addon.
    const extra = name === "sharp" ? [...new Bun.Glob("node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.*").scanSync({ cwd: root })] : [];
    try {
      const p = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", entry, ...extra, "--outfile", bin], { cwd: root, stderr: "pipe" });
      if (p.exitCode !== 0) throw new Error(`compile ${name}: ${p.stderr.toString()}`);
      out[name] = statSync(bin).size;
    } finally {
      rmSync(entry, { force: true });
    }
  }
  return out;
}

export async function benchMediaAdapt(withSizes = false): Promise<{ results: LibResult[]; sizes?: Record<Lib | "bare", number>; sources: Record<Source, number> }> {
  mkdirSync(work, { recursive: true });
  const sources = await makeSources();
  writeFileSync(join(work, "src.jpg"), sources.jpeg);
  writeFileSync(join(work, "src.png"), sources.png);
  writeFileSync(join(work, "src.gif"), sources.gif);
  const results: LibResult[] = [];
  for (const lib of libs) {
    const p = Bun.spawnSync([process.execPath, import.meta.path, "--one", lib], { cwd: root, stderr: "inherit", timeout: 1_200_000 });
    if (p.exitCode !== 0) throw new Error(`${lib} run failed (exit ${p.exitCode})`);
    results.push(JSON.parse(p.stdout.toString().trim().split("\n").pop()!));
  }
  return {
    results,
    sizes: withSizes ? await binarySizes() : undefined,
    sources: { jpeg: sources.jpeg.byteLength, png: sources.png.byteLength, gif: sources.gif.byteLength },
  };
}

if (import.meta.main) {
  const one = process.argv.indexOf("--one");
  if (one > 0) {
    await runOne(process.argv[one + 1] as Lib);
  } else {
    const { results, sizes, sources } = await benchMediaAdapt(process.argv.includes("--sizes"));
    console.log(`sources: JPEG 4000×3000 ${sources.jpeg} B, PNG 2400×1800 ${sources.png} B, GIF 600×600×24 frames ${sources.gif} B; target ≤ ${LIMIT} B, ≤ ${EDGE} px; median of ${RUNS}`);
    console.log("| library | JPEG ms wall (CPU) | PNG ms wall (CPU) | GIF ms wall (CPU) | out JPEG/PNG/GIF bytes | peak RSS MB | binary +MB | note |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      const delta = sizes ? ((sizes[r.lib] - sizes.bare) / 1048576).toFixed(1) : "–";
      const t = (k: Source) => `${r.ms[k]} (${r.cpuMs[k]})`;
      console.log(`| ${r.lib} | ${t("jpeg")} | ${t("png")} | ${t("gif")} | ${r.out.jpeg}/${r.out.png}/${r.out.gif} | ${r.peakRssMb} | ${delta} | ${r.note} |`);
    }
  }
}
