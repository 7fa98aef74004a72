// What happens to an authenticated send request: validation, egress literals, sender, rate,
// high-water and dedup, then the store. Returns an outcome; http/ only maps it to a status.
import type { Logger } from "pino";
import type { AccountConfig, Config } from "../config.ts";
import type { Channel, MessagePayload } from "../domain/message.ts";
import type { Metrics } from "../observe/metrics.ts";
import { StorageUnavailable, type Store, type StoredResponse } from "../store/index.ts";
import { InvalidField, parseSendRequest, requestIdOf } from "./send-request.ts";

/** A JSON error body as the contract spells it (section 5). */
export type ErrorBody = string;

export type IntakeOutcome =
  /** A new message (200), or the answer stored for this request_id (200, or a remembered 400/403). */
  | { kind: "stored"; response: StoredResponse }
  /** Refused for good, without a request_id to remember it under. */
  | { kind: "refused"; status: 400 | 403; body: ErrorBody }
  /** Over the account's rate or the queue's high-water mark: retry later (429). */
  | { kind: "limited"; body: ErrorBody }
  /** Nothing was stored: retry later (503). */
  | { kind: "unavailable"; body: ErrorBody };

export interface IntakeDeps {
  config: Config;
  store: Store;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** delivery.validity_hours in ms: how long from acceptance a message may be retried. */
  validityMs: number;
  /** Called after a new message is stored, so the dispatcher need not poll. */
  onAccepted: (channel: Channel) => void;
  /**
   * Called as soon as a message's write is queued, before it is stored: with a store whose writes apply in
   * order (store.writesInOrder), a claim queued now runs in the same commit, so the message costs one fsync
   * for both (the claim's answer, like the 200, waits for it).
   */
  onAccepting?: (channel: Channel) => void;
  /**
   * Refuses a URL whose host is an IP literal the egress policy forbids (loopback, private, metadata…),
   * by throwing; names are resolved and checked only when fetched.
   */
  checkEgress: (url: string) => void;
}

export function errorBody(code: string, message: string, field?: string): ErrorBody {
  return JSON.stringify({ error: field ? { code, field, message } : { code, message } });
}

export function createIntake(d: IntakeDeps) {
  const rate = new AccountRateLimit(d.now);

  /** A permanent refusal: remembered under the request_id, so a retry gets the same answer. */
  const refuse = async (account: AccountConfig, requestId: string | null, status: 400 | 403, body: ErrorBody, bodyHash: string): Promise<IntakeOutcome> => {
    if (requestId === null) return { kind: "refused", status, body };
    return stored(await d.store.rememberRefusal(account.id, requestId, status, body, bodyHash), account.id, requestId);
  };

  const intake = async (account: AccountConfig, channel: Channel, text: string): Promise<IntakeOutcome> => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return { kind: "refused", status: 400, body: errorBody("invalid_json", `the body is not JSON: ${(e as Error).message}`, "body") };
    }
    const requestId = requestIdOf(body);
    const bodyHash = Bun.hash(text).toString(36);
    // No dedup lookup up front: accept and rememberRefusal both insert the request_id key first and
    // replay whatever answer it already has, so a retry gets the original answer either way.
    let parsed;
    try {
      parsed = parseSendRequest(body, channel, d.config.limits);
    } catch (e) {
      if (!(e instanceof InvalidField)) throw e;
      return refuse(account, requestId, 400, errorBody("invalid_field", e.message, e.field), bodyHash);
    }
    for (const f of parsed.unknownFields) d.metrics.unknownFields.inc({ field: d.metrics.unknownFieldLabel(f.slice(0, 40)) });
    const refusedUrl = egressRefusal(parsed.payload, d.checkEgress);
    if (refusedUrl) return refuse(account, requestId, 400, errorBody("invalid_field", refusedUrl.message, refusedUrl.field), bodyHash);
    if (account.allowed_senders.length > 0 && !account.allowed_senders.includes(parsed.payload.from)) {
      return refuse(account, requestId, 403, errorBody("sender_not_allowed", `account ${account.id} may not send from "${parsed.payload.from}"`, "from"), bodyHash);
    }
    // A retry of a request already answered is replayed even when new work would be refused.
    const limited = !rate.take(account.id, account.rate_limit)
      ? errorBody("rate_limited", `account ${account.id} is limited to ${account.rate_limit} requests/s`)
      : d.store.queuedCount() >= d.config.limits.queue_high_water
        ? errorBody("queue_full", "the gateway's queue is over its high-water mark; retry later")
        : null;
    if (limited !== null) {
      const seen = requestId === null ? null : await d.store.lookupRequest(account.id, requestId, bodyHash);
      return seen ? stored(seen, account.id, requestId) : { kind: "limited", body: limited };
    }
    const accepting = d.store.accept({
      accountId: account.id,
      requestId: parsed.requestId,
      channel,
      payload: parsed.payload,
      bodyHash,
      expiresAt: d.now() + d.validityMs,
    });
    d.onAccepting?.(channel);
    const response = await accepting;
    if (!response.replay) {
      d.metrics.accepted.inc({ channel });
      d.log.debug({ messageId: response.messageId, accountId: account.id, requestId, channel }, "accepted");
      d.onAccepted(channel);
    }
    return stored(response, account.id, requestId);
  };

  const stored = (r: StoredResponse, accountId: string, requestId: string | null): IntakeOutcome => {
    if (r.replay) {
      const who = { messageId: r.messageId, accountId, requestId };
      d.metrics.duplicates.inc({ body_differs: String(r.bodyDiffers) });
      if (r.bodyDiffers) d.log.warn(who, "request_id replayed with a different body; the original answer is returned");
      else d.log.debug(who, "request_id seen before; stored answer replayed");
    }
    return { kind: "stored", response: r };
  };

  return async (account: AccountConfig, channel: Channel, text: string): Promise<IntakeOutcome> => {
    try {
      return await intake(account, channel, text);
    } catch (e) {
      const who = { accountId: account.id };
      if (e instanceof StorageUnavailable) {
        d.metrics.storageErrors.inc();
        d.log.error({ ...who, err: e.message }, "storage refused the write; answering 503");
        return { kind: "unavailable", body: errorBody("storage_unavailable", "the gateway cannot store messages right now; retry later") };
      }
      d.log.error({ ...who, err: (e as Error).stack ?? String(e) }, "unexpected error in intake");
      return { kind: "unavailable", body: errorBody("internal", "unexpected internal error; retry later") };
    }
  };
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

/** Requests per second per account (token bucket); rate 0 = unlimited. */
export class AccountRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly now: () => number) {}

  take(id: string, rate: number): boolean {
    if (rate <= 0) return true;
    const now = this.now();
    const b = this.buckets.get(id) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(id, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
