// The admin API under /admin: look a message up, list and requeue dead letters, list receipts that
// matched no message, retry failed messages, purge. Thin: arguments are read by operator.ts,
// the work is the store's.
import { Elysia } from "elysia";
import type { Logger } from "pino";
import { OperatorInputError, positiveInt, purgeOlderThan, requeueTarget, retryFilter } from "./operator.ts";
import type { CapabilityMemory } from "../pipeline/capability.ts";
import type { Store } from "../store/index.ts";

export interface AdminDeps {
  store: Store;
  log: Logger;
  now: () => number;
  /** Answers the request itself when it is not authorised (see auth.ts). */
  refuse: (request: Request, addr: string) => Response | null;
  /** A fresh validity window for messages retried by the operator. */
  validityMs: number;
  dedupWindowMs: number;
  /** Requeued events or retried messages are due now: wake the loops instead of waiting for their poll. */
  onRequeued: () => void;
  onRetried: () => void;
  capability: CapabilityMemory;
}

type Ctx = { request: Request; server: { requestIP(r: Request): { address: string } | null } | null };

const json = (status: number, body: unknown) => new Response(`${JSON.stringify(body)}\n`, { status, headers: { "content-type": "application/json" } });

/**
 * A browser holding the admin's Basic credentials would send them with a cross-site form post
 * (`enctype=text/plain` needs no CORS preflight): a POST must be JSON, which a foreign page can only
 * send after a preflight we never grant, and must not come from a foreign page at all.
 */
function refuseCrossSite(request: Request): Response | null {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  let foreign = site !== null && site !== "same-origin" && site !== "none";
  if (!foreign && origin !== null) {
    try {
      foreign = new URL(origin).host !== request.headers.get("host");
    } catch {
      foreign = true; // "null" (sandboxed frames, file: pages) and anything unparsable
    }
  }
  if (foreign) return json(403, { error: { code: "cross_site", message: "admin actions are not taken from another site's page (Origin / Sec-Fetch-Site)" } });
  if (!/^application\/json\s*(?:;|$)/i.test(request.headers.get("content-type") ?? "")) {
    return json(415, { error: { code: "unsupported_media_type", message: "admin POST bodies must be sent as content-type: application/json" } });
  }
  return null;
}

async function readJson(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new OperatorInputError("the body is not JSON");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new OperatorInputError("the body must be a JSON object");
  return v as Record<string, unknown>;
}

export function admin(d: AdminDeps) {
  /** Authorises, runs, and maps a bad argument to 400 (the store's own failures stay 503). */
  const guarded =
    (run: (c: Ctx & { params: Record<string, string> }) => Promise<Response> | Response) =>
    async (c: Ctx & { params: Record<string, string> }) => {
      const refused = d.refuse(c.request, c.server?.requestIP(c.request)?.address ?? "unknown") ?? (c.request.method === "POST" ? refuseCrossSite(c.request) : null);
      if (refused) return refused;
      try {
        return await run(c);
      } catch (e) {
        if (e instanceof OperatorInputError) return json(400, { error: { code: "invalid_argument", message: e.message } });
        d.log.error({ err: (e as Error).message, path: new URL(c.request.url).pathname }, "admin request failed");
        return json(503, { error: { code: "unavailable", message: (e as Error).message } });
      }
    };

  return new Elysia({ name: "admin" })
    .get(
      "/admin/messages/:id",
      guarded(async ({ params }) => {
        const m = await d.store.describe(params.id!);
        return m ? json(200, m) : json(404, { error: { code: "not_found", message: `no message with id or request_id ${params.id}` } });
      }),
    )
    .get(
      "/admin/dead-letters",
      guarded(async ({ request }) => {
        const limit = new URL(request.url).searchParams.get("limit");
        return json(200, { dead_letters: await d.store.listDeadEvents(limit === null ? 100 : positiveInt(limit, "limit")) });
      }),
    )
    .get(
      "/admin/receipts/unmatched",
      guarded(async ({ request }) => {
        const limit = new URL(request.url).searchParams.get("limit");
        return json(200, { unmatched_receipts: await d.store.listUnmatchedReceipts(limit === null ? 100 : positiveInt(limit, "limit")) });
      }),
    )
    .post(
      "/admin/dead-letters/requeue",
      guarded(async ({ request }) => {
        const body = await readJson(request);
        const requeued = await d.store.requeueDead(requeueTarget(body.seqs));
        d.log.info({ requeued, seqs: body.seqs }, "admin: dead letters requeued");
        if (requeued > 0) d.onRequeued();
        return json(200, { requeued });
      }),
      { parse: "none" },
    )
    .post(
      "/admin/messages/retry-failed",
      guarded(async ({ request }) => {
        const body = await readJson(request);
        const filter = retryFilter((body.filter ?? body) as Record<string, unknown>);
        const retried = await d.store.retryFailed(filter, d.validityMs);
        d.log.info({ retried, filter }, "admin: failed messages sent again");
        if (retried > 0) d.onRetried();
        return json(200, { retried });
      }),
      { parse: "none" },
    )
    .get(
      "/admin/capability",
      guarded(async () => json(200, { no_mms: await d.capability.list() })),
    )
    .delete(
      "/admin/capability/:number",
      guarded(async ({ params }) => {
        const forgotten = await d.capability.forget(params.number!);
        d.log.info({ number: params.number, forgotten }, "admin: capability memory entry forgotten");
        return forgotten ? json(200, { forgotten: true }) : json(404, { error: { code: "not_found", message: `${params.number} is not remembered` } });
      }),
    )
    .post(
      "/admin/purge",
      guarded(async ({ request }) => {
        const body = await readJson(request);
        const purged = await purgeOlderThan(d.store, positiveInt(body.older_than_hours, "older_than_hours"), d.dedupWindowMs, d.now());
        d.log.info(purged, "admin: purged");
        return json(200, purged);
      }),
      { parse: "none" },
    );
}
