// GET /m/<token>: the hosted page of a message that fell back to SMS, and /m/<token>/<n> its media.
// Public (the token is the only key), so every answer is private to the one who holds the link.
import { Elysia } from "elysia";
import { pagePath, type MediaLinks } from "../pipeline/media-link.ts";

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
      return page ? new Response(page.html, { headers: { ...headers, "content-type": "text/html; charset=utf-8" } }) : notFound();
    })
    .get(`${pagePath}:token/:n`, async ({ params }) => {
      const n = /^[1-9]\d{0,2}$/.test(params.n) ? Number(params.n) : 0;
      const media = n ? await links.mediaOf(params.token, n) : null;
      return media ? new Response(media.bytes, { headers: { ...headers, "content-type": media.contentType } }) : notFound();
    });
}
