// POST /mms, POST /sms, GET /verify: thin. Authenticate and read the body; the pipeline's intake decides,
// and each outcome is mapped here to the status Bloomreach interprets (contract section 5).
import { Elysia } from "elysia";
import type { Logger } from "pino";
import type { Channel } from "../domain/message.ts";
import { createIntake, errorBody, type IntakeDeps } from "../pipeline/intake.ts";
import { GuessingGuard, type Authenticator } from "./auth.ts";
import { readBody } from "../../adapters/shared/body.ts";

export interface ChannelApiDeps extends IntakeDeps {
  /** True once shutdown has begun: new sends get 503. */
  shuttingDown: () => boolean;
  /** The accounts now: asked once per request, so a request is judged by one account set, never a mix. */
  accounts: () => Authenticator;
}

const jsonHeaders = { "content-type": "application/json" };

export function channelApi(d: ChannelApiDeps) {
  const guard = new GuessingGuard(d.config.server.auth_failures_per_minute, d.now);
  const intake = createIntake(d);
  const retryAfter = String(d.config.server.retry_after_s);
  const maxBody = d.config.server.max_body_bytes;

  const reply = (endpoint: string, status: number, body: string) => {
    d.metrics.requests.inc({ endpoint, status });
    const headers: Record<string, string> = status === 429 || status === 503 ? { ...jsonHeaders, "retry-after": retryAfter } : jsonHeaders;
    return new Response(body, { status, headers });
  };
  /** `clientAddress` is asked only while some address has failed lately: it costs a lookup per request. */
  const authenticate = (endpoint: string, request: Request, clientAddress: () => string) => {
    const addr = guard.watching() ? clientAddress() : null;
    if (addr !== null && guard.blocked(addr)) return reply(endpoint, 429, errorBody("too_many_failures", "too many failed authentications from this address; try later"));
    const account = d.accounts().authenticate(request.headers);
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

      const outcome = await intake(account, channel, text);
      switch (outcome.kind) {
        case "stored":
          if (!outcome.response.replay && outcome.response.status === 200) d.metrics.acceptLatency.observe({ channel }, (performance.now() - started) / 1000);
          return reply(endpoint, outcome.response.status, outcome.response.body);
        case "refused":
          return reply(endpoint, outcome.status, outcome.body);
        case "limited":
          return reply(endpoint, 429, outcome.body);
        case "unavailable":
          return reply(endpoint, 503, outcome.body);
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

/**
 * The body as text, or null once it passes `max` bytes: a body without Content-Length (chunked) is
 * cut off while it streams instead of being buffered whole first.
 */
async function readCapped(request: Request, max: number): Promise<string | null> {
  // With a Content-Length (already checked against the limit) Bun reads the body in one go; the
  // stream path costs several times more per request, so it is kept for chunked bodies.
  if (request.headers.has("content-length")) return request.text();
  const bytes = await readBody(request.body, max, "refuse");
  return bytes === undefined ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/** The capture switch: the raw body as received, with every header value that could be a secret hidden. */
function logRawRequest(log: Logger, accountId: string, endpoint: string, headers: Headers, body: string): void {
  const shown: Record<string, string> = {};
  headers.forEach((v, k) => {
    shown[k] = /^(chan-|authorization|cookie|x-api-key)/i.test(k) ? `<redacted ${v.length} chars>` : v;
  });
  log.info({ accountId, endpoint, headers: shown, body }, "raw request (server.log_request_bodies is on)");
}
