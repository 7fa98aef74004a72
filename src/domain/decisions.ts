// Every decision about a message, as pure functions: given what is stored and what happened, they
// return the transition to write. A store driver applies it (compare-and-set on the state, the event
// in the same transaction) and decides nothing itself, so every engine keeps the same promises.
import type { CarrierReceipt, SubmitResult } from "../../adapters/carrier.ts";
import { assertTransition, type Channel, type MessageState, type ReportStatus, type StoredMessage } from "./message.ts";
import { normaliseNumber } from "./number.ts";
import { jitteredBackoffMs } from "../../adapters/shared/backoff.ts";
import { gatewayErrors, type GatewayError } from "./outcome.ts";

export interface DeliveryPolicy {
  retryBaseMs: number;
  retryMaxMs: number;
  receiptWindowMs: number;
  /** A `sent` event as soon as the carrier takes the message, before its report. */
  intermediateEvents: boolean;
  /** A submit whose outcome is unknown (crash, timeout, link lost, expired lease): never resend it, or resend it. */
  inFlightPolicy: "at-most-once" | "at-least-once";
  /** How long a number refused as unable to take MMS goes straight to its fallback SMS; 0 or absent = never remembered. */
  noMmsMemoryMs?: number;
}

/** A number to skip MMS for until `until` (capability memory), written with the fallback. */
export interface NoMmsMemory {
  number: string;
  reason: string;
  until: number;
}

/** What a transition finished, told to the counters once it is committed. */
export type Outcome = { kind: "final"; status: ReportStatus } | { kind: "fallback" };

/** The delivery report a transition emits in the same transaction. */
export interface EventToEmit {
  status: ReportStatus;
  /** The event's timestamp: when it happened (a receipt's own time), not when it was written. */
  at: number;
  carrierMessageId: string | null;
  error?: GatewayError;
}

/** One transition of one message, and everything written with it. */
export interface Transition {
  from: MessageState;
  to: MessageState;
  /** When the next step is due; null once final. */
  dueAt: number | null;
  attemptsDelta: number;
  /** The fallback SMS changes the channel (and marks the message as a fallback). */
  channel: Channel;
  fallback: boolean;
  carrier: string | null;
  error: GatewayError | null;
  /** A line for the message's history. */
  detail: string;
  event: EventToEmit | null;
  outcome: Outcome | null;
  /** A new validity end (operator retry). */
  expiresAt?: number;
  /** Where the message may go next among its route's carriers (domain/route.ts); written when set. */
  routing?: { pinned: string | null; refused: string[] };
  /** Why the MMS went to its fallback SMS ("code: message"), kept for its events. */
  fallbackReason?: string;
  /** The recipient to remember as unable to take MMS. */
  noMms?: NoMmsMemory;
}

type Options = Partial<Pick<Transition, "dueAt" | "attemptsDelta" | "carrier" | "error" | "event" | "outcome" | "expiresAt">> & { detail: string };

function transition(m: StoredMessage, to: MessageState, o: Options, by: "automatic" | "operator" = "automatic"): Transition {
  assertTransition(m.state, to, m.id, by);
  return {
    from: m.state,
    to,
    dueAt: o.dueAt ?? null,
    attemptsDelta: o.attemptsDelta ?? 0,
    channel: m.channel,
    fallback: m.fallback,
    carrier: o.carrier ?? null,
    error: o.error ?? null,
    detail: o.detail,
    event: o.event ?? null,
    outcome: o.outcome ?? null,
    ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt } : {}),
  };
}

/** A final state and its event. */
export function finish(m: StoredMessage, status: ReportStatus, at: number, carrierMessageId: string | null, error?: GatewayError, carrier?: string): Transition {
  return transition(m, status, {
    dueAt: null,
    error,
    carrier,
    detail: error ? `${error.code}: ${error.message}` : status,
    event: { status, at, carrierMessageId, ...(error ? { error } : {}) },
    outcome: { kind: "final", status },
  });
}

/**
 * The MMS cannot reach this handset: the fallback text goes out as SMS, or, when the request gave
 * none, the message fails.
 */
export function fallbackOrFail(m: StoredMessage, now: number, cause: GatewayError, noMmsMemoryMs = 0, carrierMessageId: string | null = null): Transition {
  if (m.payload.fallback_text === "") {
    return finish(m, "failed", now, carrierMessageId, { code: cause.code, message: `${cause.message}; ${gatewayErrors.noFallbackText.message}` });
  }
  const t = transition(m, "accepted", { dueAt: now, error: cause, detail: `fallback to SMS after ${cause.code}`, outcome: { kind: "fallback" } });
  const reason = `${cause.code}: ${cause.message}`;
  const remember = noMmsMemoryMs > 0 && !notTheHandset.test(cause.code);
  // The SMS is routed afresh: what bound the MMS to its carriers does not apply to it.
  return {
    ...t,
    channel: "sms",
    fallback: true,
    routing: { pinned: null, refused: [] },
    fallbackReason: reason,
    ...(remember ? { noMms: { number: normaliseNumber(m.payload.to), reason, until: now + noMmsMemoryMs } } : {}),
  };
}

/** Causes about our content or the capability memory itself, not the handset: never remembered. */
const notTheHandset = /^(media|capability|gateway|mm7:size):?/;

/** A due message is claimed for a submit (for `carrier`, chosen now by its route), or failed when its validity has ended. */
/**
 * A due message at a claim: failed if past its validity, else `submitting` for the carrier `assign`
 * picks now; null when `assign` leaves it to another node (the claim reads past it).
 */
export function decideClaim(m: StoredMessage, now: number, lastError: string | null, assign?: (m: StoredMessage) => string | null): Transition | null {
  if (now >= m.expiresAt) {
    return finish(m, "failed", now, null, { ...gatewayErrors.validityExpired, message: `${gatewayErrors.validityExpired.message}; last error: ${lastError ?? "none"}` });
  }
  const carrier = assign?.(m);
  if (carrier === null) return null;
  return transition(m, "submitting", { dueAt: now, attemptsDelta: 1, carrier, detail: carrier ? `claimed for ${carrier}` : "claimed" });
}

/**
 * What the carrier's answer to a submit means for the message. `routing` (domain/route.ts
 * afterAttempt) keeps a retry on this carrier, or sends a permanent refusal to the route's next one.
 */
export function decideAfterSubmit(
  m: StoredMessage,
  carrier: string,
  result: SubmitResult,
  policy: DeliveryPolicy,
  now: number,
  random: () => number,
  routing: { pin: boolean; elsewhere: boolean } = { pin: false, elsewhere: false },
): Transition {
  if (result.kind === "ok") {
    const ids = result.carrierMessageIds;
    return transition(m, "submitted", {
      dueAt: now + policy.receiptWindowMs,
      carrier,
      detail: `submitted to ${carrier} as ${ids.join(",")}`,
      event: policy.intermediateEvents ? { status: "sent", at: now, carrierMessageId: ids[0] ?? null } : null,
    });
  }
  const error = { code: result.code, message: result.message };
  if (result.kind === "temporary" && result.inDoubt && policy.inFlightPolicy === "at-most-once") {
    return finish(m, "failed", now, null, { code: gatewayErrors.inFlightUnknown.code, message: `${result.code}: ${result.message}; not resent (at-most-once policy)` }, carrier);
  }
  if (result.kind === "temporary") {
    const wait = Math.max(result.retryAfterMs ?? 0, jitteredBackoffMs(m.attempts, policy.retryBaseMs, policy.retryMaxMs, random));
    if (now + wait < m.expiresAt) {
      const t = transition(m, "accepted", { dueAt: now + wait, carrier, error, detail: `temporary ${result.code} from ${carrier}: ${result.message}; retry in ${wait} ms` });
      return routing.pin ? { ...t, routing: { pinned: carrier, refused: m.refused } } : t;
    }
    return finish(m, "failed", now, null, { code: result.code, message: `${result.message} (validity ends before the next retry)` });
  }
  if (routing.elsewhere) {
    const t = transition(m, "accepted", { dueAt: now, carrier, error, detail: `permanent ${result.code} from ${carrier}: ${result.message}; the route's next carrier may take it` });
    return { ...t, routing: { pinned: null, refused: [...m.refused, carrier] } };
  }
  if (result.fallbackEligible && m.channel === "mms") return fallbackOrFail(m, now, error, policy.noMmsMemoryMs);
  return finish(m, "failed", now, null, error, carrier);
}

/** What `recordSubmit` reports for a stored submit answer: a fallback to SMS, or a final status. */
export type SubmitVerdict = { fallback: boolean; final: ReportStatus | null };

/** The verdict of the answer's own transition. */
export function submitVerdict(t: Transition): SubmitVerdict {
  return { fallback: t.outcome?.kind === "fallback", final: t.outcome?.kind === "final" ? t.outcome.status : null };
}

/** The verdict once receipts held for the answer were applied: they may have finished it, or sent it to the fallback SMS. */
export function verdictAfterHeldReceipts(state: MessageState): SubmitVerdict {
  if (state === "submitted") return { fallback: false, final: null };
  if (state === "accepted") return { fallback: true, final: null };
  return { fallback: false, final: state as ReportStatus };
}

/**
 * A message left `submitting` by a node that stopped (a crash, or its claim lease ran out): the submit
 * may or may not have reached the carrier.
 */
export function decideInFlight(m: StoredMessage, policy: DeliveryPolicy, now: number): Transition {
  if (policy.inFlightPolicy === "at-least-once") {
    // Resent only to the carrier that may have it.
    const t = transition(m, "accepted", { dueAt: now, detail: `recovered in flight: resending to ${m.carrier} (at-least-once)` });
    return { ...t, routing: { pinned: m.carrier, refused: m.refused } };
  }
  return finish(m, "failed", now, null, gatewayErrors.inFlightUnknown);
}

/** The receipt window ended without a report. */
export function decideReceiptWindowEnd(m: StoredMessage, now: number): Transition {
  return finish(m, "sent", now, null, gatewayErrors.noReportInWindow);
}

/** The outcome of a whole multipart submit, once every part has one; null while a part is open. */
export function aggregateParts(outcomes: (CarrierReceipt["outcome"] | null)[]): "delivered" | "sent" | null {
  if (outcomes.some((o) => o === null)) return null;
  return outcomes.every((o) => o === "delivered") ? "delivered" : "sent";
}

/**
 * A final receipt for one part of a submitted message, matched under `carrierId` (the reading of its
 * id that found the message). `parts` are the outcomes of every part of that carrier's submit, this
 * receipt's already included. Null: nothing to write yet (other parts open).
 */
export function decideReceipt(
  m: StoredMessage,
  r: CarrierReceipt,
  carrierId: string,
  parts: { carrierId: string; outcome: CarrierReceipt["outcome"] | null }[],
  noMmsMemoryMs = 0,
): Transition | null {
  const error = r.code ? { code: r.code, message: r.message ?? r.code } : undefined;
  if (r.outcome === "failed") {
    // One failed part fails the whole message: the person did not get all of it.
    const cause = error ?? { code: "carrier:failed", message: "the carrier reported a failure" };
    if (r.fallbackEligible && m.channel === "mms") return fallbackOrFail(m, r.timestamp, cause, noMmsMemoryMs, carrierId);
    return finish(m, "failed", r.timestamp, carrierId, cause);
  }
  const status = aggregateParts(parts.map((p) => p.outcome));
  if (status === null) return null;
  return finish(m, status, r.timestamp, parts[0]!.carrierId);
}

/**
 * Operator action: a failed message is sent again as a new attempt with a fresh validity window; the
 * final event of the new attempt follows the earlier `failed` one.
 */
export function decideOperatorRetry(m: StoredMessage, now: number, validityMs: number): Transition {
  return transition(m, "accepted", { dueAt: now, expiresAt: now + validityMs, detail: "operator retry" }, "operator");
}

/** Whether a message in this state waits for a carrier (what the high-water mark counts). */
export function waitsForCarrier(s: MessageState): boolean {
  return s === "accepted" || s === "submitting";
}
