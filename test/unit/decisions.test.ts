// The decisions every store driver applies, checked without a database.
import { describe, expect, test } from "bun:test";
import {
  aggregateParts,
  decideAfterSubmit,
  decideClaim,
  decideInFlight,
  decideOperatorRetry,
  decideReceipt,
  decideReceiptWindowEnd,
  type DeliveryPolicy,
} from "../../src/domain/decisions.ts";
import { IllegalTransition, type StoredMessage } from "../../src/domain/message.ts";

const policy: DeliveryPolicy = { retryBaseMs: 1000, retryMaxMs: 60_000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" };
const msg = (o: Partial<StoredMessage> = {}): StoredMessage => ({
  id: "msg_1",
  accountId: "a",
  requestId: "r",
  channel: "mms",
  fallback: false,
  state: "submitting",
  attempts: 1,
  createdAt: 0,
  expiresAt: 100_000,
  payload: { from: "1", to: "2", subject: "", text: "t", fallback_text: "fb", media: [], custom_data: null, callback_url: "https://x.example/cb", metadata: null },
  carrier: null,
  pinned: null,
  refused: [],
  ...o,
});
const half = () => 0.5;

describe("after a submit", () => {
  test("ok: submitted, due at the end of the receipt window; a sent event only with intermediate events", () => {
    const t = decideAfterSubmit(msg(), "mm7", { kind: "ok", carrierMessageIds: ["c1", "c2"] }, policy, 1000, half);
    expect(t).toMatchObject({ from: "submitting", to: "submitted", dueAt: 1000 + 3_600_000, carrier: "mm7", event: null, outcome: null });
    const i = decideAfterSubmit(msg(), "mm7", { kind: "ok", carrierMessageIds: ["c1"] }, { ...policy, intermediateEvents: true }, 1000, half);
    expect(i.event).toEqual({ status: "sent", at: 1000, carrierMessageId: "c1" });
  });

  test("temporary: back to accepted after the backoff (or the carrier's Retry-After if longer)", () => {
    const t = decideAfterSubmit(msg({ attempts: 2 }), "mm7", { kind: "temporary", code: "x:busy", message: "busy" }, policy, 1000, half);
    // attempt 2: ceiling 2000, half jitter → 1500
    expect(t).toMatchObject({ to: "accepted", dueAt: 2500, error: { code: "x:busy" }, event: null });
    const later = decideAfterSubmit(msg(), "mm7", { kind: "temporary", code: "x:busy", message: "busy", retryAfterMs: 30_000 }, policy, 1000, half);
    expect(later.dueAt).toBe(31_000);
  });

  test("temporary past the validity: failed with its event", () => {
    const t = decideAfterSubmit(msg({ expiresAt: 1500 }), "mm7", { kind: "temporary", code: "x:busy", message: "busy" }, policy, 1000, half);
    expect(t).toMatchObject({ to: "failed", dueAt: null, event: { status: "failed", error: { code: "x:busy" } }, outcome: { kind: "final", status: "failed" } });
  });

  test("in doubt: failed under at-most-once, retried under at-least-once", () => {
    const r = { kind: "temporary", code: "smpp:timeout", message: "no answer", inDoubt: true } as const;
    expect(decideAfterSubmit(msg(), "s", r, policy, 1000, half)).toMatchObject({ to: "failed", error: { code: "gateway:in_flight_unknown" } });
    expect(decideAfterSubmit(msg(), "s", r, { ...policy, inFlightPolicy: "at-least-once" }, 1000, half)).toMatchObject({ to: "accepted" });
  });

  test("permanent and fallback-eligible on MMS: the fallback SMS, due now; without fallback text: failed", () => {
    const r = { kind: "permanent", code: "mm7:4004", message: "no MMS", fallbackEligible: true } as const;
    expect(decideAfterSubmit(msg(), "mm7", r, policy, 1000, half)).toMatchObject({ to: "accepted", channel: "sms", fallback: true, dueAt: 1000, event: null, outcome: { kind: "fallback" } });
    const none = msg({ payload: { ...msg().payload, fallback_text: "" } });
    expect(decideAfterSubmit(none, "mm7", r, policy, 1000, half)).toMatchObject({ to: "failed", channel: "mms", error: { code: "mm7:4004" }, event: { status: "failed" } });
    // An SMS has no fallback of its own.
    expect(decideAfterSubmit(msg({ channel: "sms" }), "s", r, policy, 1000, half)).toMatchObject({ to: "failed", channel: "sms" });
  });

  test("a stale copy of the message cannot be decided twice", () => {
    expect(() => decideAfterSubmit(msg({ state: "submitted" }), "s", { kind: "ok", carrierMessageIds: ["c"] }, policy, 1, half)).toThrow(IllegalTransition);
  });
});

describe("claims, in-flight and the receipt window", () => {
  test("a claim counts an attempt; past the validity the message fails instead", () => {
    expect(decideClaim(msg({ state: "accepted" }), 1000, null)).toMatchObject({ to: "submitting", attemptsDelta: 1, event: null });
    const t = decideClaim(msg({ state: "accepted", expiresAt: 1000 }), 1000, '{"code":"x"}');
    expect(t).toMatchObject({ to: "failed", event: { status: "failed", error: { code: "gateway:validity_expired" } } });
    expect(t.error!.message).toContain('{"code":"x"}');
  });

  test("in flight (crash or expired lease): at-most-once fails, at-least-once resends", () => {
    expect(decideInFlight(msg(), policy, 5)).toMatchObject({ to: "failed", error: { code: "gateway:in_flight_unknown" }, event: { status: "failed" } });
    expect(decideInFlight(msg(), { ...policy, inFlightPolicy: "at-least-once" }, 5)).toMatchObject({ to: "accepted", dueAt: 5, event: null });
  });

  test("the receipt window ends: sent, with no error in the event", () => {
    const t = decideReceiptWindowEnd(msg({ state: "submitted" }), 9);
    expect(t).toMatchObject({ to: "sent", event: { status: "sent" } });
  });
});

describe("receipts", () => {
  const submitted = msg({ state: "submitted", channel: "sms" });
  test("multipart: nothing until every part is in; delivered only if all are", () => {
    expect(aggregateParts(["delivered", null])).toBeNull();
    expect(aggregateParts(["delivered", "delivered"])).toBe("delivered");
    expect(aggregateParts(["delivered", "unknown"])).toBe("sent");
    const r = { carrier: "s", carrierMessageId: "p1", outcome: "delivered" as const, timestamp: 7 };
    expect(decideReceipt(submitted, r, r.carrierMessageId, [{ carrierId: "p1", outcome: "delivered" }, { carrierId: "p2", outcome: null }])).toBeNull();
    expect(decideReceipt(submitted, r, r.carrierMessageId, [{ carrierId: "p1", outcome: "delivered" }, { carrierId: "p2", outcome: "delivered" }])).toMatchObject({
      to: "delivered",
      event: { status: "delivered", at: 7, carrierMessageId: "p1" },
    });
  });

  test("one failed part fails the message at once, with the carrier's code", () => {
    const r = { carrier: "s", carrierMessageId: "p2", outcome: "failed" as const, code: "smpp:UNDELIV", timestamp: 7 };
    expect(decideReceipt(submitted, r, r.carrierMessageId, [{ carrierId: "p1", outcome: null }, { carrierId: "p2", outcome: "failed" }])).toMatchObject({
      to: "failed",
      event: { status: "failed", carrierMessageId: "p2", error: { code: "smpp:UNDELIV" } },
    });
  });

  test("a failed MMS receipt that allows it sends the fallback SMS", () => {
    const r = { carrier: "m", carrierMessageId: "c", outcome: "failed" as const, fallbackEligible: true, timestamp: 7 };
    expect(decideReceipt(msg({ state: "submitted" }), r, r.carrierMessageId, [{ carrierId: "c", outcome: "failed" }])).toMatchObject({ to: "accepted", channel: "sms", fallback: true });
  });
});

describe("operator actions", () => {
  test("retry-failed reopens a failed message with a fresh validity; nothing else is reopened", () => {
    expect(decideOperatorRetry(msg({ state: "failed" }), 10, 1000)).toMatchObject({ to: "accepted", dueAt: 10, expiresAt: 1010 });
    for (const state of ["delivered", "sent", "accepted", "submitted"] as const) {
      expect(() => decideOperatorRetry(msg({ state }), 10, 1000)).toThrow(IllegalTransition);
    }
  });
});
