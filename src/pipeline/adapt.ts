// Media adapted to fit the carrier's whole-message limit and the types it takes: images re-encoded (JPEG
// quality ladder, then smaller dimensions; animated GIF fewer frames and colours, else its first frame as a
// still; WebP and AVIF converted even when they fit), audio and video converted by ffmpeg when one is found,
// anything else passed through when it fits. Each (content hash, profile) is adapted once and remembered,
// so a campaign that sends one image to a million recipients pays for it once.
import type { MediaPart } from "../../adapters/carrier.ts";
import type { ImageCodec, ImageInfo, ImageSource } from "./image-codec.ts";
import { carrierTakes, extensionOf } from "./media.ts";
import type { AvConverter } from "./transcode.ts";

const NO_CONVERTER = "no audio/video converter configured";
const noConverter: AvConverter = { missing: NO_CONVERTER, convert: async () => ({ unfit: NO_CONVERTER }) };

export interface AdaptedImage {
  contentType: string;
  bytes: Uint8Array;
  width: number;
  height: number;
}

/** A remembered adaptation: the result, or why nothing fits (as worth remembering for a campaign). */
export type AdaptResult = AdaptedImage | { unfit: string };

/** Where adaptations are kept between messages and restarts (the store's adapted_media table). */
export interface AdaptedCache {
  get(sourceHash: string, profile: string): Promise<AdaptResult | null>;
  put(sourceHash: string, profile: string, result: AdaptResult): Promise<void>;
}

export interface FitOptions {
  /** Carrier name; part of the profile, as two carriers may render the same limit differently. */
  carrier: string;
  maxMessageBytes: number;
  /** Longest edge of an image after adaptation, in pixels. */
  maxEdge: number;
  /** The size the carrier's limit applies to, for a message with these parts. */
  measure(parts: MediaPart[]): number;
}

export type FitOutcome = { parts: MediaPart[]; adapted: number } | { code: string; message: string };

// 85 looks like the source on a handset; below 40 JPEG blocks show. Then the image gets smaller.
const QUALITY_LADDER = [85, 75, 65, 55, 45, 40];
const EDGE_STEP = 0.75;
const MIN_EDGE = 96;
const WEB_EDGE = 1280;
const WEB_MAX_BYTES = 2 * 1024 * 1024;
/** Budgets are rounded down to this, so messages whose texts differ by a few bytes share one adaptation. */
const BUDGET_QUANTUM = 4096;
/** Room for a part's headers changing with its new name and type (e.g. photo.png → photo.jpg). */
const HEADER_SLACK = 256;

/** Adapted results and image headers kept in memory: a campaign's every message must not re-read either. */
const MEMORY_BYTES = 32 * 1024 * 1024;
const MEMORY_INFOS = 4096;

export class MediaAdapter {
  private readonly inFlight = new Map<string, Promise<AdaptResult>>();
  // Maps iterate in insertion order: re-inserting on a hit makes the first key the least recently used.
  private readonly recent = new Map<string, AdaptResult>();
  private recentBytes = 0;
  /** Image headers by content hash, as promises: the messages of a campaign that ask at once share one read. */
  private readonly infos = new Map<string, Promise<ImageInfo | null>>();

  constructor(
    private readonly codec: ImageCodec,
    private readonly cache: AdaptedCache,
    /** Told of each adaptation actually computed (not served from the cache): what "adapt once" is measured by. */
    private readonly onComputed: () => void = () => {},
    /** Audio and video conversion; without one they pass through when they fit. */
    private readonly av: AvConverter = noConverter,
  ) {}

  /** The parts to submit, or a permanent error naming the part that cannot be made to fit. */
  async fit(parts: MediaPart[], o: FitOptions): Promise<FitOutcome> {
    const infos = await Promise.all(parts.map((p) => (p.contentType.startsWith("image/") ? this.info(p) : Promise.resolve(null))));
    const isAv = (i: number) => isAvType(parts[i]!.contentType);
    const describe = (i: number) => `part ${i + 1} (${parts[i]!.filename}, ${parts[i]!.contentType}, ${parts[i]!.bytes.byteLength} bytes)`;
    for (let i = 0; i < parts.length; i++) {
      const type = parts[i]!.contentType;
      if (carrierTakes(type)) continue;
      if (type.startsWith("image/") && !infos[i]) {
        return { code: "media:unsupported_type", message: `${describe(i)}: ${type} is not a type MMS handsets take, and ${UNDECODABLE[type] ?? "the image library cannot decode this file"}` };
      }
      if (isAv(i) && this.av.missing) {
        return { code: "media:unsupported_type", message: `${describe(i)}: ${type} is not a type MMS handsets take, and it cannot be converted: ${this.av.missing}` };
      }
    }
    const total = o.measure(parts);
    // Work even when the message fits: a type the carrier does not take, or an image too large or carrying metadata.
    const mustWork = (i: number) => {
      if (!carrierTakes(parts[i]!.contentType)) return true;
      const info = infos[i];
      return info ? Math.max(info.width, info.height) > o.maxEdge || info.hasMetadata || info.orientation !== 1 : false;
    };
    if (total <= o.maxMessageBytes && !parts.some((_, i) => mustWork(i))) return { parts, adapted: 0 };

    // The parts that can be made smaller share what the message weighs without them; a part already under
    // an equal share and needing no work keeps its bytes, and leaves its share to the others.
    let adaptable = parts.flatMap((_, i) => (infos[i] || (isAv(i) && !this.av.missing) ? [i] : []));
    let share = 0;
    for (;;) {
      const stripped = parts.map((p, i) => (adaptable.includes(i) ? { ...p, bytes: new Uint8Array(0) } : p));
      const rest = o.measure(stripped) + HEADER_SLACK * adaptable.length;
      if (adaptable.length === 0 || rest >= o.maxMessageBytes) {
        return { code: "media:cannot_fit", message: this.tooBigWithout(parts, adaptable, total, o) };
      }
      share = Math.floor((o.maxMessageBytes - rest) / adaptable.length);
      const small = adaptable.filter((i) => !mustWork(i) && parts[i]!.bytes.byteLength <= share);
      if (small.length === 0) break;
      adaptable = adaptable.filter((i) => !small.includes(i));
    }
    const budget = share >= BUDGET_QUANTUM ? share - (share % BUDGET_QUANTUM) : share;
    const profile = `${o.carrier}/${o.maxEdge}px/${budget}B`;

    const out = [...parts];
    let adapted = 0;
    for (const i of adaptable) {
      const part = parts[i]!;
      const info = infos[i];
      const result = await this.adaptOnce(part, profile, () =>
        info ? this.adaptImage(sourceOf(part), info, budget, o.maxEdge) : this.adaptAv(part, budget, o.maxEdge),
      );
      if ("unfit" in result) return { code: "media:cannot_fit", message: `${describe(i)}: ${result.unfit}` };
      out[i] = { ...part, contentType: result.contentType, bytes: result.bytes, cacheKey: `${part.cacheKey}@${profile}`, filename: renamed(part.filename, result.contentType) };
      adapted++;
    }
    const size = o.measure(out);
    if (size > o.maxMessageBytes) {
      // The budget left room for every part's headers, so this is a bug; never submit over the limit.
      return { code: "media:cannot_fit", message: `after adaptation the message is ${size} bytes, over max_message_bytes ${o.maxMessageBytes}` };
    }
    return { parts: out, adapted };
  }

  /**
   * The copy shown on the hosted page: an image adapted for a phone's browser, other media as they
   * are up to WEB_MAX_BYTES; null when there is nothing to show.
   */
  async forWeb(part: MediaPart): Promise<{ hash: string; profile: string } | null> {
    const info = part.contentType.startsWith("image/") ? await this.info(part) : null;
    if (info) {
      const profile = `web/${WEB_EDGE}px/${WEB_MAX_BYTES}B`;
      const result = await this.adaptOnce(part, profile, () => this.adaptImage(sourceOf(part), info, WEB_MAX_BYTES, WEB_EDGE));
      // Read through the store as well: that marks the row used, so the purge keeps it as long as the new page.
      return "unfit" in result || !(await this.cache.get(part.cacheKey, profile)) ? null : { hash: part.cacheKey, profile };
    }
    if (!isAvType(part.contentType) || part.bytes.byteLength > WEB_MAX_BYTES) return null;
    const profile = "web/original";
    if (!(await this.cache.get(part.cacheKey, profile))) {
      await this.cache.put(part.cacheKey, profile, { contentType: part.contentType, bytes: part.bytes, width: 0, height: 0 });
    }
    return { hash: part.cacheKey, profile };
  }

  private info(part: MediaPart): Promise<ImageInfo | null> {
    const known = this.infos.get(part.cacheKey);
    if (known) return known;
    const info = this.codec.info(sourceOf(part));
    this.infos.set(part.cacheKey, info);
    // A failure to read (not "no image": that is null) is not remembered; the next message tries again.
    info.catch(() => this.infos.get(part.cacheKey) === info && this.infos.delete(part.cacheKey));
    if (this.infos.size > MEMORY_INFOS) this.infos.delete(this.infos.keys().next().value!);
    return info;
  }

  private remember(key: string, result: AdaptResult): AdaptResult {
    const size = "bytes" in result ? result.bytes.byteLength : 0;
    const old = this.recent.get(key);
    if (old) {
      this.recent.delete(key);
      this.recentBytes -= "bytes" in old ? old.bytes.byteLength : 0;
    }
    this.recent.set(key, result);
    this.recentBytes += size;
    for (const [k, v] of this.recent) {
      if (this.recentBytes <= MEMORY_BYTES) break;
      this.recent.delete(k);
      this.recentBytes -= "bytes" in v ? v.bytes.byteLength : 0;
    }
    return result;
  }

  /** One adaptation per (content, profile): from memory or the store, else computed once however many ask at once. */
  private adaptOnce(part: MediaPart, profile: string, compute: () => Promise<AdaptResult>): Promise<AdaptResult> {
    const key = `${part.cacheKey}@${profile}`;
    const inMemory = this.recent.get(key);
    if (inMemory) return Promise.resolve(this.remember(key, inMemory));
    let pending = this.inFlight.get(key);
    if (!pending) {
      // Registered before the store is read, so messages asking at once share one read and one adaptation.
      pending = (async () => {
        const stored = await this.cache.get(part.cacheKey, profile);
        if (stored) return this.remember(key, stored);
        this.onComputed();
        const result = await compute();
        await this.cache.put(part.cacheKey, profile, result);
        return this.remember(key, result);
      })().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async adaptImage(bytes: ImageSource, info: ImageInfo, budget: number, maxEdge: number): Promise<AdaptResult> {
    const longest = Math.max(info.width, info.height);
    const scale = (edge: number) => Math.min(1, edge / longest);
    const sized = (data: Uint8Array, contentType: string, edge: number): AdaptedImage => ({
      contentType,
      bytes: data,
      // The codec keeps the aspect; rotation by EXIF swaps the sides.
      width: Math.round((sidesSwapped(info) ? info.height : info.width) * scale(edge)),
      height: Math.round((sidesSwapped(info) ? info.width : info.height) * scale(edge)),
    });

    if (info.pages > 1) {
      for (let edge = Math.min(maxEdge, longest); edge >= MIN_EDGE * 2; edge = Math.floor(edge * EDGE_STEP)) {
        for (const [colours, keepEvery] of [[256, 1], [16, 1], [16, 2]] as const) {
          const gif = await this.codec.gif(bytes, { edge, colours, keepEvery });
          if (gif.byteLength <= budget) return sized(gif, "image/gif", edge);
        }
      }
      // No animation fits: its first frame as a still (below).
    }
    for (let edge = Math.min(maxEdge, longest); edge >= MIN_EDGE; edge = Math.floor(edge * EDGE_STEP)) {
      for (const quality of QUALITY_LADDER) {
        const jpeg = await this.codec.jpeg(bytes, { edge, quality });
        if (jpeg.byteLength <= budget) return sized(jpeg, "image/jpeg", edge);
      }
    }
    return { unfit: `no JPEG of it down to ${MIN_EDGE} px fits the ${budget} bytes this message leaves for it` };
  }

  private async adaptAv(part: MediaPart, budget: number, maxEdge: number): Promise<AdaptResult> {
    const r = await this.av.convert(sourceOf(part), part.contentType, { maxBytes: budget, maxEdge });
    return "unfit" in r ? r : { ...r, width: 0, height: 0 };
  }

  private tooBigWithout(parts: MediaPart[], adaptable: number[], total: number, o: FitOptions): string {
    const fixed = parts.map((p, i) => ({ p, i })).filter(({ i }) => !adaptable.includes(i));
    const largest = fixed.sort((a, b) => b.p.bytes.byteLength - a.p.bytes.byteLength)[0];
    const over = `the message is ${total} bytes, over max_message_bytes ${o.maxMessageBytes}`;
    if (!largest) return `${over}, and its text alone leaves no room for media`;
    const type = largest.p.contentType;
    const why = type.startsWith("image/")
      ? "is not an image the gateway can decode"
      : isAvType(type)
        ? `cannot be converted: ${this.av.missing}`
        : "cannot be adapted (no converter for this type)";
    return `part ${largest.i + 1} (${largest.p.filename}, ${type}, ${largest.p.bytes.byteLength} bytes) ${why}; ${over}`;
  }
}

const isAvType = (contentType: string) => /^(audio|video)\//.test(contentType);

/** A large source's file (libvips and ffmpeg read it without the whole of it in memory), else its bytes. */
function sourceOf(part: MediaPart): ImageSource {
  return part.path ?? part.bytes;
}

/** EXIF orientations 5–8 turn the picture a quarter: the stored width is the shown height. */
function sidesSwapped(info: ImageInfo): boolean {
  return info.orientation >= 5;
}

function renamed(filename: string, contentType: string): string {
  return `${filename.replace(/\.[A-Za-z0-9]{1,5}$/, "")}.${extensionOf(contentType)}`;
}

// What the prebuilt libvips inside sharp lacks (sharp's docs: HEIC needs a libvips built with libde265/x265).
const UNDECODABLE: Record<string, string> = {
  "image/heic": "the gateway's image library cannot decode HEIC (sharp's prebuilt libvips reads AVIF but has no HEVC decoder): send it as JPEG",
};
