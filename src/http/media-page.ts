// GET /m/<token>: the hosted page of a message that fell back to SMS, and /m/<token>/<n> its media.
// Public (the token is the only key), so every answer is private to the one who holds the link.
import { Elysia } from "elysia";
import { pagePath, type MediaLinks } from "../pipeline/media-link.ts";
import type { MediaLink } from "../store/index.ts";
import { esc } from "./html.ts";

const headers = {
  // No script, nothing from elsewhere: the page only shows what it holds.
  "content-security-policy": "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'",
  "referrer-policy": "no-referrer",
  "x-robots-tag": "noindex",
  "x-content-type-options": "nosniff",
  "cache-control": "private, max-age=3600",
};

const notFound = () => new Response("This page does not exist or has expired.\n", { status: 404, headers: { ...headers, "content-type": "text/plain; charset=utf-8" } });

export function mediaPage(links: MediaLinks) {
  return new Elysia({ name: "media-page" })
    .get(`${pagePath}:token`, async ({ params }) => {
      const page = await links.page(params.token);
      return page ? new Response(renderPage(page.link, params.token, page.types), { headers: { ...headers, "content-type": "text/html; charset=utf-8" } }) : notFound();
    })
    .get(`${pagePath}:token/:n`, async ({ params }) => {
      const n = /^[1-9]\d{0,2}$/.test(params.n) ? Number(params.n) : 0;
      const media = n ? await links.mediaOf(params.token, n) : null;
      return media ? new Response(media.bytes, { headers: { ...headers, "content-type": media.contentType } }) : notFound();
    });
}

/** No script and nothing fetched from elsewhere: the page is safe to open from an SMS on any phone. */
function renderPage(link: MediaLink, token: string, types: string[]): string {
  const items = types.map((type, i) => {
    const src = `${pagePath}${token}/${i + 1}`;
    if (type.startsWith("image/")) return `<img src="${src}" alt="">`;
    if (type.startsWith("video/")) return `<video src="${src}" controls playsinline></video>`;
    if (type.startsWith("audio/")) return `<audio src="${src}" controls></audio>`;
    return `<p><a href="${src}">Attachment ${i + 1}</a></p>`;
  });
  const title = link.subject || "Message";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${esc(title)}</title>
<style>body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem;color:#222}
img,video{display:block;max-width:100%;height:auto;margin:1rem 0}audio{width:100%}h1{font-size:1.25rem}p{white-space:pre-wrap}</style>
</head><body>
${link.subject ? `<h1>${esc(link.subject)}</h1>\n` : ""}${items.join("\n")}
${link.text ? `<p>${esc(link.text)}</p>` : ""}
</body></html>
`;
}
