// Media for an MMS: fetched through the egress guard, checked for type and size, and cached by URL,
// because a campaign sends one image to a million recipients and must fetch it once, not a million times.

import type { MediaPart } from "../../adapters/carrier.ts";
import { EgressRefused, EgressTooLarge, classifyStatus, type Egress, type EgressResponse } from "../egress/fetch.ts";
import { Spool, clearSpoolDir } from "./spool.ts";

export interface MediaItem {
  url: string;
  content_type?: string;
}

export interface MediaError {
  kind: "temporary" | "permanent";
  /** media:refused | media:too_large | media:unsupported_type | media:http_<status> | media:network */
  code: string;
  message: string;
}

export interface MediaFetcherOptions {
  egress: Pick<Egress, "fetch">;
  /** Cap on the decoded content of one item (the carrier limit is on the decoded MM). */
  maxBytes: number;
  timeoutMs: number;
  maxRedirects: number;
  cacheEntries: number;
  /** Longest an item is used without asking the server again; a shorter Cache-Control max-age wins. */
  cacheTtlMs: number;
  /** Bytes all cached items may hold together. */
  cacheBytes?: number;
  now?: () => number;
  /** Where a source larger than spoolAboveBytes is kept while it is used (under the data directory); none = in memory. */
  spoolDir?: string;
  spoolAboveBytes?: number;
  /** pino-style: called when the bytes contradict the claimed type and the bytes win. */
  warn?: (detail: Record<string, unknown>, message: string) => void;
}

export interface MediaFetcher {
  get(item: MediaItem): Promise<MediaPart | MediaError>;
}

export function isMediaError(result: MediaPart | MediaError): result is MediaError {
  return "kind" in result;
}

// What MMS handsets and MMSCs take (OMA MMS conformance content plus the common extras). Left out on purpose:
// image/svg+xml (scriptable), and application/smil (the adapter writes its own presentation).
const MMS_EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/gif": "gif",
  "image/bmp": "bmp",
  "image/vnd.wap.wbmp": "wbmp",
  "video/mp4": "mp4",
  "video/3gpp": "3gp",
  "video/3gpp2": "3g2",
  "audio/amr": "amr",
  "audio/mpeg": "mp3",
  "audio/mp4": "m4a",
  "audio/aac": "aac",
  "audio/3gpp": "3gp",
  "audio/midi": "mid",
  "audio/wav": "wav",
  "text/vcard": "vcf",
  "text/x-vcard": "vcf",
  "text/calendar": "ics",
  "text/x-vcalendar": "vcs",
  "text/plain": "txt",
};

// Taken in only to be converted (few handsets render them in an MMS): images by the image library, audio and
// video by ffmpeg, into a type of MMS_EXTENSIONS before the submit (adapt.ts).
const CONVERTED_EXTENSIONS: Record<string, string> = {
  "image/webp": "webp",
  "image/heic": "heic",
  "image/avif": "avif",
  "video/quicktime": "mov",
  "video/webm": "webm",
  "audio/ogg": "ogg",
};

const EXTENSIONS: Record<string, string> = { ...MMS_EXTENSIONS, ...CONVERTED_EXTENSIONS };

/** The file extension for a type the gateway takes in ("bin" for any other). */
export function extensionOf(contentType: string): string {
  return EXTENSIONS[contentType] ?? "bin";
}

/** A type the carrier takes as it is; anything else the fetcher accepts must be converted first. */
export function carrierTakes(contentType: string): boolean {
  return Object.hasOwn(MMS_EXTENSIONS, contentType);
}

const ALIASES: Record<string, string> = {
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "image/x-ms-bmp": "image/bmp",
  "audio/mp3": "audio/mpeg",
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/vnd.wave": "audio/wav",
  "audio/x-midi": "audio/midi",
  "audio/mid": "audio/midi",
  "audio/x-aac": "audio/aac",
  "audio/x-m4a": "audio/mp4",
  "image/heif": "image/heic",
  "video/mov": "video/quicktime",
  "audio/opus": "audio/ogg",
};

// Object stores serve untyped uploads as these; they say nothing, so the declared type or the bytes decide.
const UNTYPED = new Set(["application/octet-stream", "binary/octet-stream", "application/unknown"]);

/** "Image/JPG; charset=x" → "image/jpeg"; undefined when it names no type. */
export function normaliseType(raw: string | null | undefined): string | undefined {
  const bare = raw?.split(";")[0]?.trim().toLowerCase();
  if (!bare || UNTYPED.has(bare)) return undefined;
  return ALIASES[bare] ?? bare;
}

type Format = "jpeg" | "png" | "gif" | "webp" | "isobmff" | "amr" | "ebml" | "ogg";

const FORMAT_OF: Record<string, Format> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/gif": "gif",
  "image/webp": "webp",
  "image/heic": "isobmff",
  "image/avif": "isobmff",
  "video/quicktime": "isobmff",
  "video/webm": "ebml",
  "audio/ogg": "ogg",
  "video/mp4": "isobmff",
  "video/3gpp": "isobmff",
  "video/3gpp2": "isobmff",
  "audio/mp4": "isobmff",
  "audio/3gpp": "isobmff",
  "audio/amr": "amr",
};

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));

/** The type the bytes themselves show, for the formats with an unmistakable signature. */
export function sniffType(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
  if (ascii(bytes, 0, 8) === "\x89PNG\r\n\x1a\n") return "image/png";
  if (/^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return "image/gif";
  if (ascii(bytes, 0, 6) === "#!AMR\n") return "audio/amr";
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return "image/webp";
  if (ascii(bytes, 0, 4) === "OggS") return "audio/ogg";
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) return "video/webm";
  if (ascii(bytes, 4, 8) === "ftyp") {
    const brand = ascii(bytes, 8, 12);
    if (brand === "avif" || brand === "avis") return "image/avif";
    // HEIF with HEVC pictures (what iPhones save); mif1/msf1 are the generic HEIF brands.
    if (/^(heic|heix|hevc|hevx|heim|heis|mif1|msf1)$/.test(brand)) return "image/heic";
    if (brand === "qt  ") return "video/quicktime";
    if (brand.startsWith("3g2")) return "video/3gpp2";
    if (brand.startsWith("3gp")) return "video/3gpp";
    if (brand === "M4A ") return "audio/mp4";
    return "video/mp4";
  }
  return undefined;
}

/** A safe Content-Location name from the URL's last path segment, with the extension of the type. */
export function filenameFor(url: string, contentType: string): string {
  const extension = extensionOf(contentType);
  let segment = "";
  try {
    segment = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  } catch {
    // A malformed %-escape: fall back to the default name.
  }
  const stem = segment
    .replace(/\.[A-Za-z0-9]{1,5}$/, "")
    .replace(/[^A-Za-z0-9_-]+/g, "_")
    .replace(/^[_-]+|[_-]+$/g, "")
    .slice(0, 40 - extension.length - 1);
  return `${stem || "media"}.${extension}`;
}

interface Fetched {
  bytes: Uint8Array;
  /** The file the bytes are mapped from, for a large source. */
  path?: string;
  cacheKey: string;
  servedType?: string;
  sniffedType?: string;
  etag?: string;
  lastModified?: string;
}

/** A cached outcome: the bytes, or a permanent failure, which is as worth remembering for a campaign. */
type Entry = { fetched: Fetched; freshUntil: number } | { error: MediaError; freshUntil: number };

const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Larger than any MMSC takes (so it will be adapted, by libvips or ffmpeg, which read files). */
const DEFAULT_SPOOL_ABOVE = 1024 * 1024;

export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const now = options.now ?? Date.now;
  const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the least recently used.
  const cache = new Map<string, Entry>();
  let cachedBytes = 0;
  const inFlight = new Map<string, Promise<Entry>>();
  if (options.spoolDir) clearSpoolDir(options.spoolDir);

  const sizeOf = (entry: Entry) => ("fetched" in entry ? entry.fetched.bytes.byteLength : 0);

  function forget(url: string): void {
    const old = cache.get(url);
    if (!old) return;
    cachedBytes -= sizeOf(old);
    cache.delete(url);
  }

  function remember(url: string, entry: Entry): void {
    forget(url);
    if (sizeOf(entry) > cacheBytes || options.cacheEntries <= 0) return;
    cache.set(url, entry);
    cachedBytes += sizeOf(entry);
    for (const oldest of cache.keys()) {
      if (cache.size <= options.cacheEntries && cachedBytes <= cacheBytes) break;
      forget(oldest);
    }
  }

  /** Milliseconds the response may be reused, or null when it must not be stored at all. */
  function freshness(headers: Headers): number | null {
    const directives = (headers.get("cache-control") ?? "").toLowerCase();
    if (/(^|[,\s])no-store\b/.test(directives)) return null;
    if (/(^|[,\s])no-cache\b/.test(directives)) return 0;
    const maxAge = /(^|[,\s])max-age\s*=\s*"?(\d+)/.exec(directives);
    return maxAge ? Math.min(Number(maxAge[2]) * 1000, options.cacheTtlMs) : options.cacheTtlMs;
  }

  async function download(url: string, stale: Entry | undefined): Promise<Entry> {
    const previous = stale && "fetched" in stale ? stale.fetched : undefined;
    const headers = new Headers();
    if (previous?.etag) headers.set("if-none-match", previous.etag);
    if (previous?.lastModified) headers.set("if-modified-since", previous.lastModified);

    const failed = (error: MediaError): Entry => {
      // Bytes that were good a minute ago beat a message held back by a flaky media server.
      if (error.kind === "temporary" && previous) return { fetched: previous, freshUntil: now() };
      const entry = { error, freshUntil: now() + options.cacheTtlMs };
      if (error.kind === "permanent") remember(url, entry);
      else forget(url);
      return entry;
    };

    // The body streams into the spool (to disk past spoolAboveBytes), the size cap applied while it arrives.
    const spool = new Spool(options.spoolDir ?? null, options.spoolAboveBytes ?? DEFAULT_SPOOL_ABOVE);
    let response: EgressResponse;
    try {
      response = await options.egress.fetch(url, {
        headers,
        timeoutMs: options.timeoutMs,
        maxBytes: options.maxBytes,
        maxRedirects: options.maxRedirects,
        onChunk: (chunk) => spool.write(chunk),
      });
    } catch (error) {
      spool.discard();
      return failed(mediaErrorOf(error));
    }
    if (response.status !== 200) spool.discard();

    const ttl = freshness(response.headers);
    if (response.status === 304 && previous) {
      const entry = { fetched: previous, freshUntil: now() + (ttl ?? 0) };
      if (ttl === null) forget(url);
      else remember(url, entry);
      return entry;
    }
    if (response.status !== 200) {
      const kind = classifyStatus(response.status) === "temporary" ? "temporary" : "permanent";
      return failed({ kind, code: `media:http_${response.status}`, message: `${url} answered ${response.status}` });
    }
    const body = spool.finish();
    const fetched: Fetched = {
      bytes: body.bytes,
      path: body.path,
      cacheKey: body.sha256,
      servedType: normaliseType(response.headers.get("content-type")),
      sniffedType: sniffType(body.bytes.subarray(0, 16)),
      etag: response.headers.get("etag") ?? undefined,
      lastModified: response.headers.get("last-modified") ?? undefined,
    };
    const entry = { fetched, freshUntil: now() + (ttl ?? 0) };
    if (ttl === null) forget(url);
    else remember(url, entry);
    return entry;
  }

  function load(url: string): Promise<Entry> {
    const cached = cache.get(url);
    if (cached && now() < cached.freshUntil) {
      cache.delete(url);
      cache.set(url, cached);
      return Promise.resolve(cached);
    }
    // Concurrent requests for the same URL share one download (and one revalidation).
    let pending = inFlight.get(url);
    if (!pending) {
      pending = download(url, cached).finally(() => inFlight.delete(url));
      inFlight.set(url, pending);
    }
    return pending;
  }

  /** The served type, else the declared one, else the sniffed one; bytes that clearly say otherwise win. */
  function decideType(url: string, fetched: Fetched, declared: string | undefined): string | undefined {
    const claimed = fetched.servedType ?? declared;
    const sniffed = fetched.sniffedType;
    if (!claimed) return sniffed;
    if (sniffed && FORMAT_OF[claimed] !== FORMAT_OF[sniffed]) {
      options.warn?.({ url, claimed, sniffed }, "media type contradicts its bytes; using the bytes' type");
      return sniffed;
    }
    return claimed;
  }

  return {
    async get(item) {
      const entry = await load(item.url);
      if ("error" in entry) return entry.error;
      const { fetched } = entry;
      const contentType = decideType(item.url, fetched, normaliseType(item.content_type));
      if (fetched.bytes.byteLength === 0 || !contentType || !Object.hasOwn(EXTENSIONS, contentType)) {
        return {
          kind: "permanent",
          code: "media:unsupported_type",
          message: `${item.url}: ${fetched.bytes.byteLength === 0 ? "empty body" : (contentType ?? "unknown type")} cannot be sent by MMS`,
        };
      }
      return {
        contentType,
        bytes: fetched.bytes,
        ...(fetched.path ? { path: fetched.path } : {}),
        cacheKey: fetched.cacheKey,
        filename: filenameFor(item.url, contentType),
      };
    },
  };
}

function mediaErrorOf(error: unknown): MediaError {
  if (error instanceof EgressRefused) return { kind: "permanent", code: "media:refused", message: error.message };
  if (error instanceof EgressTooLarge) return { kind: "permanent", code: "media:too_large", message: error.message };
  // EgressNetworkError, and anything unforeseen: another attempt later may well work.
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "temporary", code: "media:network", message };
}
