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
  /** SMS parts a text takes on the SMS carrier, and the most it may take. */
  smsParts(text: string): number;
  maxParts: number;
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

export class MediaLinks {
  constructor(private readonly o: MediaLinkOptions) {}

  /** The fallback SMS text for `m`: its fallback text with the page link, or the bare text when no page can be made. */
  async fallbackText(m: StoredMessage): Promise<string> {
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
    return this.withLink(p.fallback_text, url);
  }

  /** Text and link within the SMS parts limit: the text is shortened (never the link) when both do not fit. */
  withLink(text: string, url: string): string {
    const join = (t: string) => (t ? `${t}\n${url}` : url);
    if (this.o.smsParts(join(text)) <= this.o.maxParts) return join(text);
    let lo = 0;
    let hi = text.length;
    // The longest prefix that fits, found by bisection (parts only grow with length).
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.o.smsParts(join(`${text.slice(0, mid).trimEnd()}${ELLIPSIS}`)) <= this.o.maxParts) lo = mid;
      else hi = mid - 1;
    }
    return join(lo > 0 ? `${text.slice(0, lo).trimEnd()}${ELLIPSIS}` : "");
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

  async page(token: string): Promise<{ html: string } | null> {
    if (!tokenShape.test(token)) return null;
    const link = await this.o.store.mediaLink(token);
    if (!link) return null;
    const types = await Promise.all(link.media.map(async (_, i) => (await this.mediaOf(token, i + 1))?.contentType ?? ""));
    return { html: renderPage(link, (i) => `${pagePath}${token}/${i + 1}`, (i) => types[i]!) };
  }

  /** The n-th (1-based) medium of a page, or null. */
  async mediaOf(token: string, n: number): Promise<{ contentType: string; bytes: Uint8Array } | null> {
    if (!tokenShape.test(token)) return null;
    const link = await this.o.store.mediaLink(token);
    const ref = link?.media[n - 1];
    if (!ref) return null;
    const row = await this.o.store.adaptedMedia(ref.hash, ref.profile);
    return row && !("unfit" in row) ? { contentType: row.contentType, bytes: row.bytes } : null;
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** No script and nothing fetched from elsewhere: the page is safe to open from an SMS on any phone. */
function renderPage(link: MediaLink, src: (i: number) => string, typeOf: (i: number) => string): string {
  const items = link.media.map((_, i) => {
    const type = typeOf(i);
    if (type.startsWith("image/")) return `<img src="${src(i)}" alt="">`;
    if (type.startsWith("video/")) return `<video src="${src(i)}" controls playsinline></video>`;
    if (type.startsWith("audio/")) return `<audio src="${src(i)}" controls></audio>`;
    return `<p><a href="${src(i)}">Attachment ${i + 1}</a></p>`;
  });
  const title = link.subject || "Message";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escape(title)}</title>
<style>body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem;color:#222}
img,video{display:block;max-width:100%;height:auto;margin:1rem 0}audio{width:100%}h1{font-size:1.25rem}p{white-space:pre-wrap}</style>
</head><body>
${link.subject ? `<h1>${escape(link.subject)}</h1>\n` : ""}${items.join("\n")}
${link.text ? `<p>${escape(link.text)}</p>` : ""}
</body></html>
`;
}
