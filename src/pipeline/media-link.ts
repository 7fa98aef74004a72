// The hosted media page: when an MMS with media falls back to SMS, the SMS ends with a link to a small
// page (subject, text, the media adapted for the web) that the gateway serves itself.
import type { MediaPart } from "../../adapters/carrier.ts";
import type { StoredMessage } from "../domain/message.ts";
import type { MediaLink, Store } from "../store/index.ts";
import type { MediaAdapter } from "./adapt.ts";

export interface MediaLinkOptions {
  store: Pick<Store, "ensureMediaLink" | "mediaLink" | "adaptedMedia">;
  adapter: MediaAdapter;
  /** Media for the page: the same fetcher (and cache) the MMS used. */
  fetch(item: { url: string; content_type?: string }): Promise<MediaPart | { code: string; message: string }>;
  baseUrl: string;
  ttlMs: number;
  random?: (bytes: Uint8Array) => Uint8Array;
  warn(detail: object, message: string): void;
  info?(detail: object, message: string): void;
}

/** The path under base_url and under the gateway's own listener. */
export const pagePath = "/m/";
const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN_LENGTH = 22;
const tokenShape = /^[A-Za-z0-9]{22}$/;
/** GSM has no "…"; one would make the whole SMS UCS-2. */
const ELLIPSIS = "...";

/** What one SMS carrier takes: the parts a text needs there, and the most it may take. */
export interface SmsBudget {
  parts(text: string): number;
  maxParts: number;
}

/** Text and link within the SMS parts limit: the text is shortened (never the link) when both do not fit. */
export function withLink(text: string, url: string, budget: SmsBudget): string {
  const join = (t: string) => (t ? `${t}\n${url}` : url);
  if (budget.parts(join(text)) <= budget.maxParts) return join(text);
  let lo = 0;
  let hi = text.length;
  // The longest prefix that fits, found by bisection (parts only grow with length).
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (budget.parts(join(`${text.slice(0, mid).trimEnd()}${ELLIPSIS}`)) <= budget.maxParts) lo = mid;
    else hi = mid - 1;
  }
  return join(lo > 0 ? `${text.slice(0, lo).trimEnd()}${ELLIPSIS}` : "");
}

export class MediaLinks {
  constructor(private readonly o: MediaLinkOptions) {}

  /**
   * The fallback SMS text for `m`: its fallback text with the page link, or the bare text when no page can be
   * made. `budget` is the SMS carrier's that will send it (routes choose it).
   */
  async fallbackText(m: StoredMessage, budget: SmsBudget): Promise<string> {
    const p = m.payload;
    if (!this.o.baseUrl || p.media.length === 0) return p.fallback_text;
    const media: MediaLink["media"] = [];
    for (const item of p.media) {
      const part = await this.o.fetch(item);
      if (!("bytes" in part)) {
        this.o.warn({ messageId: m.id, url: item.url, code: part.code }, "media for the hosted page unavailable; left off the page");
        continue;
      }
      const stored = await this.o.adapter.forWeb(part);
      if (stored) media.push(stored);
    }
    const link = await this.o.store.ensureMediaLink({ token: this.newToken(), messageId: m.id, subject: p.subject, text: p.text, media }, this.o.ttlMs);
    const url = `${this.o.baseUrl.replace(/\/+$/, "")}${pagePath}${link.token}`;
    this.o.info?.({ messageId: m.id, url, media: media.length }, "fallback SMS links to its hosted media page");
    return withLink(p.fallback_text, url, budget);
  }

  /**
   * 22 letters and digits, 131 random bits: unguessable, short, and all in the GSM alphabet (base64url's
   * "_" is not, and would turn the whole SMS into UCS-2 at half the length per part).
   */
  private newToken(): string {
    const random = this.o.random ?? ((b: Uint8Array) => crypto.getRandomValues(b));
    let token = "";
    while (token.length < TOKEN_LENGTH) {
      for (const b of random(new Uint8Array(32))) {
        // 248 = 4 × 62: bytes above it are dropped so every symbol is equally likely.
        if (b < 248 && token.length < TOKEN_LENGTH) token += TOKEN_ALPHABET[b % 62];
      }
    }
    return token;
  }

  /** What the page of `token` shows: its subject and text, and the type of each medium; null when there is none. */
  async page(token: string): Promise<{ link: MediaLink; types: string[] } | null> {
    if (!tokenShape.test(token)) return null;
    const link = await this.o.store.mediaLink(token);
    if (!link) return null;
    const types = await Promise.all(link.media.map(async (ref) => (await this.adapted(ref))?.contentType ?? ""));
    return { link, types };
  }

  /** The n-th (1-based) medium of a page, or null. */
  async mediaOf(token: string, n: number): Promise<{ contentType: string; bytes: Uint8Array } | null> {
    if (!tokenShape.test(token)) return null;
    const ref = (await this.o.store.mediaLink(token))?.media[n - 1];
    return ref ? this.adapted(ref) : null;
  }

  private async adapted(ref: MediaLink["media"][number]): Promise<{ contentType: string; bytes: Uint8Array } | null> {
    const row = await this.o.store.adaptedMedia(ref.hash, ref.profile);
    return row && !("unfit" in row) ? { contentType: row.contentType, bytes: row.bytes } : null;
  }
}
