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
  submitVerdict,
  verdictAfterHeldReceipts,
  waitsForCarrier,
} from "../../src/domain/decisions.ts";
import { IllegalTransition, messageStates, type StoredMessage } from "../../src/domain/message.ts";

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
    expect(t!.error!.message).toContain('{"code":"x"}');
  });

  test("a claim leaves to another node what assign gives away, but fails it there if it is past its validity", () => {
    expect(decideClaim(msg({ state: "accepted" }), 1000, null, () => null)).toBeNull();
    expect(decideClaim(msg({ state: "accepted" }), 1000, null, () => "a")).toMatchObject({ to: "submitting", carrier: "a" });
    expect(decideClaim(msg({ state: "accepted", expiresAt: 1000 }), 1000, null, () => null)).toMatchObject({ to: "failed" });
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

describe("fallback to SMS and the capability memory", () => {
  const DAY = 86_400_000;
  const remembering = { ...policy, noMmsMemoryMs: DAY };
  const refused = (code: string) => ({ kind: "permanent", code, message: "refused", fallbackEligible: true }) as const;
  const bound = msg({ pinned: "mm7-a", refused: ["mm7-b"], payload: { ...msg().payload, to: "+44 (7700) 900-123" } });

  test("the handset's refusal is remembered for the configured time under the normalised number, with its reason", () => {
    const t = decideAfterSubmit(bound, "mm7-a", refused("mm7:4004"), remembering, 1000, half);
    expect(t.noMms).toEqual({ number: "447700900123", reason: "mm7:4004: refused", until: 1000 + DAY });
    expect(t.fallbackReason).toBe("mm7:4004: refused");
    // The SMS is routed afresh: the MMS's pin and refusals do not follow it.
    expect(t.routing).toEqual({ pinned: null, refused: [] });
  });

  test("nothing is remembered when the memory is off", () => {
    expect(decideAfterSubmit(bound, "mm7-a", refused("mm7:4004"), policy, 1000, half).noMms).toBeUndefined();
    expect(decideAfterSubmit(bound, "mm7-a", refused("mm7:4004"), { ...policy, noMmsMemoryMs: 0 }, 1000, half).noMms).toBeUndefined();
  });

  test("our content, the memory itself and the gateway are not the handset's fault: not remembered", () => {
    for (const code of ["media:cannot_fit", "capability:no_mms", "gateway:validity_expired", "mm7:size"]) {
      const t = decideAfterSubmit(bound, "mm7-a", refused(code), remembering, 1000, half);
      expect(t).toMatchObject({ to: "accepted", channel: "sms", fallback: true });
      expect(t.noMms).toBeUndefined();
    }
    // A carrier's own code that merely mentions such a word is still about the handset.
    expect(decideAfterSubmit(bound, "mm7-a", refused("mm7:unsupported_media"), remembering, 1000, half).noMms).toEqual({ number: "447700900123", reason: "mm7:unsupported_media: refused", until: 1000 + DAY });
  });

  test("a failed receipt allowing fallback: the SMS for an MMS, final for an SMS; the carrier's code or a generic one", () => {
    const r = { carrier: "m", carrierMessageId: "c", outcome: "failed" as const, fallbackEligible: true, code: "mm7:Rejected", timestamp: 7 };
    const sms = decideReceipt(msg({ state: "submitted", channel: "sms" }), r, "c", [{ carrierId: "c", outcome: "failed" }]);
    expect(sms).toMatchObject({ to: "failed", channel: "sms", error: { code: "mm7:Rejected", message: "mm7:Rejected" } });
    const bare = decideReceipt(msg({ state: "submitted" }), { ...r, code: undefined, fallbackEligible: false }, "c", [{ carrierId: "c", outcome: "failed" }]);
    expect(bare).toMatchObject({ to: "failed", error: { code: "carrier:failed" }, event: { error: { code: "carrier:failed" } } });
  });
});

describe("where the next attempt may go", () => {
  const temporary = { kind: "temporary", code: "x:busy", message: "busy" } as const;
  const m = msg({ carrier: "s-a", refused: ["s-c"] });

  test("a retry is pinned to the carrier only when the route asks; otherwise the routing is left alone", () => {
    expect(decideAfterSubmit(m, "s-a", temporary, policy, 1000, half).routing).toBeUndefined();
    expect(decideAfterSubmit(m, "s-a", temporary, policy, 1000, half, { pin: true, elsewhere: false }).routing).toEqual({ pinned: "s-a", refused: ["s-c"] });
  });

  test("a permanent refusal with another carrier on the route: accepted again, due now, this carrier added to the refused", () => {
    const r = { kind: "permanent", code: "smpp:0x0B", message: "bad address", fallbackEligible: true } as const;
    const t = decideAfterSubmit(m, "s-a", r, policy, 1000, half, { pin: false, elsewhere: true });
    expect(t).toMatchObject({ to: "accepted", dueAt: 1000, channel: "mms", fallback: false, error: { code: "smpp:0x0B" }, event: null });
    expect(t.routing).toEqual({ pinned: null, refused: ["s-c", "s-a"] });
  });

  test("a retry due exactly when the validity ends is not made", () => {
    // attempt 1: ceiling 1000, half jitter → 750
    expect(decideAfterSubmit(msg({ expiresAt: 1750 }), "s", temporary, policy, 1000, half)).toMatchObject({ to: "failed" });
    expect(decideAfterSubmit(msg({ expiresAt: 1751 }), "s", temporary, policy, 1000, half)).toMatchObject({ to: "accepted", dueAt: 1750 });
  });

  test("recovered in flight under at-least-once: resent only to the carrier that may have it", () => {
    const t = decideInFlight(m, { ...policy, inFlightPolicy: "at-least-once" }, 5);
    expect(t.routing).toEqual({ pinned: "s-a", refused: ["s-c"] });
  });
});

describe("what recordSubmit reports, what waits for a carrier", () => {
  test("the verdict of an answer: a fallback, a final status, or neither", () => {
    const fb = decideAfterSubmit(msg(), "m", { kind: "permanent", code: "mm7:4004", message: "x", fallbackEligible: true }, policy, 1, half);
    expect(submitVerdict(fb)).toEqual({ fallback: true, final: null });
    const failed = decideAfterSubmit(msg(), "m", { kind: "permanent", code: "mm7:2002", message: "x", fallbackEligible: false }, policy, 1, half);
    expect(submitVerdict(failed)).toEqual({ fallback: false, final: "failed" });
    const ok = decideAfterSubmit(msg(), "m", { kind: "ok", carrierMessageIds: ["c"] }, policy, 1, half);
    expect(submitVerdict(ok)).toEqual({ fallback: false, final: null });
  });

  test("after held receipts: still submitted, gone to the fallback, or final in the state reached", () => {
    expect(verdictAfterHeldReceipts("submitted")).toEqual({ fallback: false, final: null });
    expect(verdictAfterHeldReceipts("accepted")).toEqual({ fallback: true, final: null });
    expect(verdictAfterHeldReceipts("delivered")).toEqual({ fallback: false, final: "delivered" });
    expect(verdictAfterHeldReceipts("failed")).toEqual({ fallback: false, final: "failed" });
  });

  test("only accepted and submitting messages wait for a carrier", () => {
    expect(messageStates.filter(waitsForCarrier)).toEqual(["accepted", "submitting"]);
  });
});
