// POST /mms, POST /sms, GET /verify: thin. Authenticate, read, validate, store, and map each outcome
// to the status Bloomreach interprets (contract section 5).
import { Elysia } from "elysia";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Channel, MessagePayload } from "../domain/message.ts";
import type { Metrics } from "../metrics.ts";
import { StorageUnavailable, type Store, type StoredResponse } from "../store/index.ts";
import { AccountRateLimit, Authenticator, GuessingGuard } from "./auth.ts";
import { InvalidField, parseSendRequest, requestIdOf } from "./send-request.ts";

export interface IntakeDeps {
  config: Config;
  store: Store;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** Called after a new message is stored, so the dispatcher need not poll. */
  onAccepted: (channel: Channel) => void;
  /**
   * Refuses a URL whose host is an IP literal the egress policy forbids (loopback, private, metadata…),
   * by throwing; names are resolved and checked only when fetched.
   */
  checkEgress: (url: string) => void;
  /** True once shutdown has begun: new sends get 503. */
  shuttingDown: () => boolean;
}

const jsonHeaders = { "content-type": "application/json" };

function errorBody(code: string, message: string, field?: string): string {
  return JSON.stringify({ error: field ? { code, field, message } : { code, message } });
}

export function channelApi(d: IntakeDeps) {
  const auth = new Authenticator(d.config.accounts);
  const guard = new GuessingGuard(d.config.server.auth_failures_per_minute, d.now);
  const rate = new AccountRateLimit(d.now);
  const retryAfter = String(d.config.server.retry_after_s);
  const maxBody = d.config.server.max_body_bytes;

  const reply = (endpoint: string, status: number, body: string) => {
    d.metrics.requests.inc({ endpoint, status });
    const headers: Record<string, string> = status === 429 || status === 503 ? { ...jsonHeaders, "retry-after": retryAfter } : jsonHeaders;
    return new Response(body, { status, headers });
  };
  const replayed = (endpoint: string, r: StoredResponse, who: { accountId: string; requestId: string | null }) => {
    if (r.replay) d.metrics.duplicates.inc({ body_differs: String(r.bodyDiffers) });
    if (r.replay && r.bodyDiffers) d.log.warn({ messageId: r.messageId, ...who }, "request_id replayed with a different body; the original answer is returned");
    else if (r.replay) d.log.debug({ messageId: r.messageId, ...who }, "request_id seen before; stored answer replayed");
    return reply(endpoint, r.status, r.body);
  };

  /** `clientAddress` is asked only while some address has failed lately: it costs a lookup per request. */
  const authenticate = (endpoint: string, request: Request, clientAddress: () => string) => {
    const addr = guard.watching() ? clientAddress() : null;
    if (addr !== null && guard.blocked(addr)) return reply(endpoint, 429, errorBody("too_many_failures", "too many failed authentications from this address; try later"));
    const account = auth.authenticate(request.headers);
    if (!account) {
      guard.failed(addr ?? clientAddress());
      return reply(endpoint, 401, errorBody("unauthorized", "the Chan-* headers match no account: check the integration's settings"));
    }
    if (!account.enabled) return reply(endpoint, 403, errorBody("account_disabled", `account ${account.id} is disabled`));
    return account;
  };

  const send = (channel: Channel) => {
    const endpoint = `/${channel}`;
    return async ({ request, server }: { request: Request; server: { requestIP(r: Request): { address: string } | null } | null }) => {
      const started = performance.now();
      if (d.shuttingDown()) return reply(endpoint, 503, errorBody("shutting_down", "the gateway is restarting; retry"));
      const account = authenticate(endpoint, request, () => server?.requestIP(request)?.address ?? "unknown");
      if (account instanceof Response) return account;

      const type = request.headers.get("content-type") ?? "";
      if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
        return reply(endpoint, 415, errorBody("unsupported_media_type", "the body must be application/json"));
      }
      const declared = Number(request.headers.get("content-length") ?? "0");
      if (declared > maxBody) return reply(endpoint, 413, errorBody("too_large", `the body is limited to ${maxBody} bytes`));
      const text = await readCapped(request, maxBody);
      if (text === null) return reply(endpoint, 413, errorBody("too_large", `the body is limited to ${maxBody} bytes`));
      if (d.config.server.log_request_bodies) logRawRequest(d.log, account.id, endpoint, request.headers, text);

      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (e) {
        return reply(endpoint, 400, errorBody("invalid_json", `the body is not JSON: ${(e as Error).message}`, "body"));
      }
      const requestId = requestIdOf(body);
      const bodyHash = Bun.hash(text).toString(36);
      const who = { accountId: account.id, requestId };
      // No dedup lookup up front: accept and rememberRefusal both insert the request_id key first and
      // replay whatever answer it already has, so a retry gets the original answer either way.
      try {
        let parsed;
        try {
          parsed = parseSendRequest(body, channel, d.config.limits);
        } catch (e) {
          if (!(e instanceof InvalidField)) throw e;
          const refusal = errorBody("invalid_field", e.message, e.field);
          if (requestId === null) return reply(endpoint, 400, refusal);
          return replayed(endpoint, await d.store.rememberRefusal(account.id, requestId, 400, refusal, bodyHash), who);
        }
        for (const f of parsed.unknownFields) d.metrics.unknownFields.inc({ field: d.metrics.unknownFieldLabel(f.slice(0, 40)) });
        const refusedUrl = egressRefusal(parsed.payload, d.checkEgress);
        if (refusedUrl) {
          const refusal = errorBody("invalid_field", refusedUrl.message, refusedUrl.field);
          if (requestId === null) return reply(endpoint, 400, refusal);
          return replayed(endpoint, await d.store.rememberRefusal(account.id, requestId, 400, refusal, bodyHash), who);
        }
        if (account.allowed_senders.length > 0 && !account.allowed_senders.includes(parsed.payload.from)) {
          const refusal = errorBody("sender_not_allowed", `account ${account.id} may not send from "${parsed.payload.from}"`, "from");
          if (requestId === null) return reply(endpoint, 403, refusal);
          return replayed(endpoint, await d.store.rememberRefusal(account.id, requestId, 403, refusal, bodyHash), who);
        }
        // A retry of a request already answered is replayed even when new work would be refused.
        const limited = !rate.take(account.id, account.rate_limit)
          ? errorBody("rate_limited", `account ${account.id} is limited to ${account.rate_limit} requests/s`)
          : d.store.queuedCount() >= d.config.limits.queue_high_water
            ? errorBody("queue_full", "the gateway's queue is over its high-water mark; retry later")
            : null;
        if (limited !== null) {
          const seen = requestId === null ? null : await d.store.lookupRequest(account.id, requestId, bodyHash);
          if (!seen) return reply(endpoint, 429, limited);
          return replayed(endpoint, seen, who);
        }
        const r = await d.store.accept({
          accountId: account.id,
          requestId: parsed.requestId,
          channel,
          payload: parsed.payload,
          bodyHash,
          expiresAt: d.now() + d.config.delivery.validity_hours * 3_600_000,
        });
        if (!r.replay) {
          d.metrics.accepted.inc({ channel });
          d.metrics.acceptLatency.observe({ channel }, (performance.now() - started) / 1000);
          d.log.debug({ messageId: r.messageId, ...who, channel }, "accepted");
          d.onAccepted(channel);
        }
        return replayed(endpoint, r, who);
      } catch (e) {
        if (e instanceof StorageUnavailable) {
          d.metrics.storageErrors.inc();
          d.log.error({ ...who, err: e.message }, "storage refused the write; answering 503");
          return reply(endpoint, 503, errorBody("storage_unavailable", "the gateway cannot store messages right now; retry later"));
        }
        d.log.error({ ...who, err: (e as Error).stack ?? String(e) }, "unexpected error in intake");
        return reply(endpoint, 503, errorBody("internal", "unexpected internal error; retry later"));
      }
    };
  };

  return new Elysia({ name: "channel-api" })
    .post("/mms", send("mms"), { parse: "none" })
    .post("/sms", send("sms"), { parse: "none" })
    .get("/verify", ({ request, server }) => {
      const account = authenticate("/verify", request, () => server?.requestIP(request)?.address ?? "unknown");
      // The contract knows only 200 and 401 here: a disabled account is not a usable integration.
      if (account instanceof Response) {
        return account.status === 403 ? reply("/verify", 401, errorBody("account_disabled", "these credentials belong to a disabled account")) : account;
      }
      return reply("/verify", 200, JSON.stringify({ status: "ok", account: account.id }));
    });
}

/** The first URL of the request that the egress policy refuses outright, named as a field. */
function egressRefusal(p: MessagePayload, check: (url: string) => void): { field: string; message: string } | null {
  const urls: [string, string][] = [["callback_url", p.callback_url], ...p.media.map((m, i): [string, string] => [p.media.length > 1 ? `media[${i}].url` : "media.url", m.url])];
  for (const [field, url] of urls) {
    try {
      check(url);
    } catch (e) {
      return { field, message: `${(e as Error).message}: the gateway does not connect there (egress.allow)` };
    }
  }
  return null;
}

/**
 * The body as text, or null once it passes `max` bytes: a body without Content-Length (chunked) is
 * cut off while it streams instead of being buffered whole first.
 */
async function readCapped(request: Request, max: number): Promise<string | null> {
  // With a Content-Length (already checked against the limit) Bun reads the body in one go; the
  // stream path costs several times more per request, so it is kept for chunked bodies.
  if (request.headers.has("content-length")) return request.text();
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** The capture switch: the raw body as received, with every header value that could be a secret hidden. */
function logRawRequest(log: Logger, accountId: string, endpoint: string, headers: Headers, body: string): void {
  const shown: Record<string, string> = {};
  headers.forEach((v, k) => {
    shown[k] = /^(chan-|authorization|cookie|x-api-key)/i.test(k) ? `<redacted ${v.length} chars>` : v;
  });
  log.info({ accountId, endpoint, headers: shown, body }, "raw request (server.log_request_bodies is on)");
}
