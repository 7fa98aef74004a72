// Real images made in the test run (sharp): photo-like pixels so their sizes are what campaigns send.
import sharp from "sharp";

/** Deterministic photo-like RGB pixels: gradients, rings and grain (grain makes JPEG as big as a photo's). */
export function photoPixels(w: number, h: number, seed = 7, grain = 6): Buffer {
  const px = Buffer.alloc(w * h * 3);
  let s = seed;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const g = grain ? ((s >>> 24) % (2 * grain)) - grain : 0;
      const i = (y * w + x) * 3;
      const ring = Math.sin(Math.hypot(x - w / 3, y - h / 2) / 23) * 60;
      px[i] = Math.max(0, Math.min(255, (x * 255) / w + g + ring));
      px[i + 1] = Math.max(0, Math.min(255, (y * 255) / h + g));
      px[i + 2] = Math.max(0, Math.min(255, ((x + y) * 127) / (w + h) + 64 + g - ring));
    }
  }
  return px;
}

/** A large JPEG stored landscape with EXIF orientation 6 (shown portrait) and a copyright tag to be stripped. */
export function rotatedJpeg(w = 3000, h = 2000): Promise<Buffer> {
  return sharp(photoPixels(w, h), { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 92 })
    .withMetadata({ orientation: 6 })
    .withExifMerge({ IFD0: { Copyright: "secret-owner-tag" } })
    .toBuffer();
}

export function largePng(w = 1800, h = 1200): Promise<Buffer> {
  return sharp(photoPixels(w, h, 3, 4), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** An animated GIF of `frames` square frames. */
export function animatedGif(size = 400, frames = 12): Promise<Buffer> {
  const strip = Buffer.alloc(size * size * frames * 3);
  for (let f = 0; f < frames; f++) strip.set(photoPixels(size, size, f + 11, 0).map((v) => (v + f * 9) & 255), f * size * size * 3);
  return sharp(strip, { raw: { width: size, height: size * frames, channels: 3, pageHeight: size } } as never).gif({ delay: 80, loop: 0 }).toBuffer();
}

/** A WebP photo (a type MMS handsets do not take; the gateway converts it). */
export function webpPhoto(w = 1800, h = 1200): Promise<Buffer> {
  return sharp(photoPixels(w, h, 5), { raw: { width: w, height: h, channels: 3 } }).webp({ quality: 90 }).toBuffer();
}

/**
 * The start of a HEIC file as an iPhone writes it (ftyp box, brand heic, then a meta box): enough for
 * anything that sniffs the type. The image library cannot decode the HEVC inside a real one either.
 */
export function heicHeader(bytes = 4096): Uint8Array {
  const out = new Uint8Array(bytes);
  const box = (at: number, size: number, type: string, body: string) => {
    new DataView(out.buffer).setUint32(at, size);
    out.set(new TextEncoder().encode(type + body), at + 4);
  };
  box(0, 24, "ftyp", "heic\0\0\0\0mif1heic");
  box(24, bytes - 24, "meta", "");
  return out;
}

/** AMR audio the gateway cannot shrink: the AMR magic, then noise. */
export function amrAudio(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  crypto.getRandomValues(out.subarray(6, Math.min(bytes, 65536 + 6)));
  out.set(new TextEncoder().encode("#!AMR\n"));
  return out;
}

export async function describeImage(bytes: Uint8Array) {
  const m = await sharp(bytes, { animated: true }).metadata();
  return { format: m.format, width: m.width!, height: m.pages && m.pages > 1 ? m.pageHeight! : m.height!, pages: m.pages ?? 1, orientation: m.orientation, exif: m.exif };
}
