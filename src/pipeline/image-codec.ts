// The image library (sharp, on libvips; chosen by measurement, docs/benchmarks.md "Media adaptation").
// Inside `bun build --compile` output the addon is embedded, but it finds libvips by RPATH next to
// itself on disk, which the compiled binary does not have: the Makefile embeds libvips as a file, and
// before the addon loads it is written to a private directory and loaded first, so the addon's
// dependency is satisfied by the already-loaded library of the same soname.
import { dlopen } from "bun:ffi";
import { chmodSync, existsSync, lstatSync, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  /** Frames of an animation; 1 for a still. */
  pages: number;
  /** EXIF or other metadata is present (stripped whenever the image is re-encoded). */
  hasMetadata: boolean;
  /** EXIF orientation, 1 = as stored (2–8: mirrored and/or turned). */
  orientation: number;
}

/** The image's bytes, or the path of a file holding them (a large source: libvips reads it piecemeal). */
export type ImageSource = Uint8Array | string;

export interface ImageCodec {
  /** null when the bytes are not an image the library decodes. */
  info(source: ImageSource): Promise<ImageInfo | null>;
  /** A baseline JPEG within `edge` px on its longest side, orientation applied, metadata stripped. */
  jpeg(source: ImageSource, o: { edge: number; quality: number }): Promise<Uint8Array>;
  /** An animated GIF within `edge` px, keeping every `keepEvery`-th frame with at most `colours` colours (libvips rounds to 2, 4, 16 or 256). */
  gif(source: ImageSource, o: { edge: number; colours: number; keepEvery: number }): Promise<Uint8Array>;
}

type Sharp = typeof import("sharp").default;
let loading: Promise<Sharp> | null = null;

/** The embedded libvips, when running as the compiled binary; nothing to do under `bun run`. */
async function preloadEmbeddedLibvips(): Promise<void> {
  const lib = (Bun.embeddedFiles as (Blob & { name?: string })[]).find((f) => f.name?.startsWith("libvips-cpp.so"));
  if (!lib) return;
  // The bundler adds a hash to the name ("libvips-cpp.so.8.18-<hash>.7"); the soname is what matters.
  const soname = lib.name!.replace(/-[a-z0-9]{8}(\.\d+)$/, "$1");
  // Per user, mode 0700 and checked: a shared library another user could swap would be code execution.
  const dir = join(tmpdir(), `mms-gateway-${process.getuid?.() ?? "user"}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} must be a directory owned by this user with mode 0700 (it holds the embedded libvips)`);
  }
  const dest = join(dir, `${lib.size}-${soname}`);
  if (!existsSync(dest) || statSync(dest).size !== lib.size) {
    // Written aside and renamed: another gateway starting at once never loads a half-written file.
    const part = `${dest}.${process.pid}.part`;
    writeFileSync(part, new Uint8Array(await lib.arrayBuffer()), { mode: 0o500 });
    chmodSync(part, 0o500);
    renameSync(part, dest);
  }
  dlopen(dest, { vips_version: { args: [], returns: "ptr" } });
}

/** sharp, loaded once on first use (a gateway that never adapts never loads libvips). */
export function loadSharp(): Promise<Sharp> {
  loading ??= (async () => {
    await preloadEmbeddedLibvips();
    // A static require: the bundler embeds the addon (sharp's ESM entry resolves it at run time and would not).
    const sharp = require("sharp") as Sharp;
    // Each image is adapted once per profile; libvips' operation cache would only hold memory.
    sharp.cache(false);
    return sharp;
  })();
  loading.catch(() => (loading = null));
  return loading;
}

export function createSharpCodec(): ImageCodec {
  return {
    async info(source) {
      const sharp = await loadSharp();
      try {
        const m = await sharp(source, { animated: true }).metadata();
        if (!m.width || !m.height || !m.format) return null;
        const pages = m.pages ?? 1;
        return {
          format: m.format,
          width: m.width,
          height: pages > 1 ? (m.pageHeight ?? m.height) : m.height,
          pages,
          hasMetadata: Boolean(m.exif || m.xmp || m.iptc || m.icc),
          orientation: m.orientation ?? 1,
        };
      } catch {
        return null;
      }
    },

    async jpeg(source, o) {
      const sharp = await loadSharp();
      return sharp(source, { pages: 1 })
        .rotate()
        .resize(o.edge, o.edge, { fit: "inside", withoutEnlargement: true })
        // Transparent PNG/GIF: a handset shows JPEG's missing alpha as black; white is what it was designed on.
        .flatten({ background: "#ffffff" })
        .jpeg({ quality: o.quality, mozjpeg: true, progressive: false })
        .toBuffer();
    },

    async gif(source, o) {
      const sharp = await loadSharp();
      const m = await sharp(source, { animated: true }).metadata();
      const pages = m.pages ?? 1;
      const keep = Array.from({ length: pages }, (_, i) => i).filter((i) => i % o.keepEvery === 0);
      const delays = m.delay ?? [];
      const frames = await Promise.all(
        keep.map((page) =>
          sharp(source, { page, pages: 1 })
            .resize(o.edge, o.edge, { fit: "inside", withoutEnlargement: true })
            .ensureAlpha()
            .raw()
            .toBuffer({ resolveWithObject: true }),
        ),
      );
      const { width, height } = frames[0]!.info;
      const strip = Buffer.concat(frames.map((f) => f.data));
      // A dropped frame's time goes to the frame kept before it, so the animation keeps its pace.
      const delay = keep.map((page) => {
        let ms = 0;
        for (let i = page; i < Math.min(pages, page + o.keepEvery); i++) ms += delays[i] ?? 100;
        return ms;
      });
      return sharp(strip, { raw: { width, height: height * frames.length, channels: 4, pageHeight: height } } as never)
        // reuse: false, or libvips keeps the source's palette; no dither: its noise defeats GIF's LZW.
        .gif({ colours: o.colours, delay, loop: m.loop ?? 0, effort: 1, dither: 0, reuse: false })
        .toBuffer();
    },
  };
}
