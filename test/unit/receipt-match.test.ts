// Which message a receipt is about when its id reads differently in different bases, and how a
// carrier's base is learnt and then narrows the readings.
import { describe, expect, test } from "bun:test";
import { idReadings } from "../../adapters/smpp/message-id.ts";
import { chooseCandidate, IdBaseLearning, LEARN_AFTER, sameAddress, type ReceiptCandidate } from "../../src/domain/receipt-match.ts";

const cand = (o: Partial<ReceiptCandidate> & { messageId: string }): ReceiptCandidate => ({
  key: o.messageId,
  base: "same",
  open: true,
  to: "447700900001",
  from: "Shop",
  submittedAt: 1_000,
  ...o,
});

describe("chooseCandidate", () => {
  test("nothing found, or one message found", () => {
    expect(chooseCandidate([], { arrivedAt: 0 })).toEqual({ kind: "none" });
    const one = cand({ messageId: "a", base: "resp_hex_receipt_dec" });
    expect(chooseCandidate([one], { arrivedAt: 0 })).toEqual({ kind: "match", candidate: one, evidence: true });
    // A closed part is still the match (a repeated receipt: the store calls it a duplicate).
    const closed = cand({ messageId: "a", open: false });
    expect(chooseCandidate([closed], { arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: closed });
  });

  test("a part still waiting beats one already reported; that is no evidence of the base", () => {
    const done = cand({ messageId: "old", open: false });
    const waiting = cand({ messageId: "new", base: "resp_hex_receipt_dec" });
    expect(chooseCandidate([done, waiting], { arrivedAt: 0 })).toEqual({ kind: "match", candidate: waiting, evidence: false });
  });

  test("two waiting messages: the receipt's handset decides, in national or international form", () => {
    const a = cand({ messageId: "a", to: "+447700900111" });
    const b = cand({ messageId: "b", to: "447700900222", base: "resp_hex_receipt_dec" });
    expect(chooseCandidate([a, b], { to: "07700900222", arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: b, evidence: false });
    expect(chooseCandidate([a, b], { to: "447700900111", arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: a });
  });

  test("same handset (or a handset that is neither): the submit nearest the receipt's arrival; a tie stays ambiguous", () => {
    const a = cand({ messageId: "a", submittedAt: 1_000 });
    const b = cand({ messageId: "b", submittedAt: 5_000, base: "resp_dec_receipt_hex" });
    expect(chooseCandidate([a, b], { to: "447700900001", arrivedAt: 6_000 })).toEqual({ kind: "match", candidate: b, evidence: false });
    expect(chooseCandidate([a, b], { to: "SENDER", arrivedAt: 1_500 })).toMatchObject({ kind: "match", candidate: a });
    const tie = chooseCandidate([a, b], { arrivedAt: 3_000 });
    expect(tie.kind).toBe("ambiguous");
  });

  test("a converted reading that found a message for another handset is a lookalike, not a match", () => {
    // The receipt says 16; its own submit answer is not stored yet, and 16 decimal is 10 hex, an older message's id.
    const older = cand({ messageId: "older", key: "10", base: "resp_hex_receipt_dec", to: "447700900001" });
    expect(chooseCandidate([older], { to: "447700900002", arrivedAt: 0 })).toEqual({ kind: "none" });
    // Once the right answer is stored, its plain reading wins even if the lookalike was sent nearer.
    const own = cand({ messageId: "own", key: "16", to: "447700900002", submittedAt: 0 });
    expect(chooseCandidate([own, { ...older, submittedAt: 1 }], { to: "SENDER", arrivedAt: 1 })).toMatchObject({ kind: "match", candidate: own });
    // The handset, or an SMSC that writes the sender there, or no address at all: still a match.
    expect(chooseCandidate([older], { to: "07700900001", arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: older });
    expect(chooseCandidate([older], { to: "SHOP", arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: older });
    expect(chooseCandidate([older], { arrivedAt: 0 })).toMatchObject({ kind: "match", candidate: older });
  });

  test("two readings finding the same message count once", () => {
    const a1 = cand({ messageId: "a", key: "26" });
    const a2 = cand({ messageId: "a", key: "1A", base: "resp_hex_receipt_dec" });
    expect(chooseCandidate([a1, a2], { arrivedAt: 0 })).toEqual({ kind: "match", candidate: a1, evidence: false });
  });
});

test("sameAddress", () => {
  expect(sameAddress("+447700900123", "00447700900123")).toBe(true);
  expect(sameAddress("07700900123", "447700900123")).toBe(true);
  expect(sameAddress("447700900123", "447700900124")).toBe(false);
  // A few digits end too many numbers to mean anything.
  expect(sameAddress("123", "447700900123")).toBe(false);
  expect(sameAddress("Shop", "SHOP")).toBe(true);
  expect(sameAddress("Shop", "447700900123")).toBe(false);
  // Spaces around, several leading zeros, a short number written two ways, exactly 7 digits.
  expect(sameAddress(" +447700900123 ", "447700900123")).toBe(true);
  expect(sameAddress("007700900123", "447700900123")).toBe(true);
  expect(sameAddress("12345", "+12345")).toBe(true);
  expect(sameAddress("7900123", "447907900123")).toBe(true);
  expect(sameAddress("790012", "447907900123")).toBe(false);
  // Letters anywhere make it a name, compared whole (case and surrounding spaces aside).
  expect(sameAddress("a12345678", "A12345678")).toBe(true);
  expect(sameAddress("12345678a", "12345678A")).toBe(true);
  expect(sameAddress(" Shop", "SHOP ")).toBe(true);
});

describe("IdBaseLearning", () => {
  const readings = idReadings("26"); // 26, 1A (answer hex), 38 (answer decimal)

  test("tries every reading until LEARN_AFTER matches through one base, then only that one", () => {
    const l = new IdBaseLearning();
    for (let i = 0; i < LEARN_AFTER - 1; i++) l.record("smsc", "resp_hex_receipt_dec");
    expect(l.learnt("smsc")).toBeNull();
    expect(l.narrow("smsc", readings)).toEqual(readings);
    l.record("smsc", "resp_hex_receipt_dec");
    expect(l.learnt("smsc")).toBe("resp_hex_receipt_dec");
    expect(l.narrow("smsc", readings)).toEqual([{ key: "1A", base: "resp_hex_receipt_dec" }]);
    // Per carrier.
    expect(l.narrow("other", readings)).toEqual(readings);
  });

  test("an id that is no number in the learnt base falls back to its plain reading", () => {
    const l = new IdBaseLearning();
    for (let i = 0; i < LEARN_AFTER; i++) l.record("smsc", "resp_hex_receipt_dec");
    expect(l.narrow("smsc", idReadings("ab-1"))).toEqual([{ key: "AB-1", base: "same" }]);
    expect(l.narrow("smsc", idReadings("1f"))).toEqual([{ key: "1F", base: "same" }]);
  });

  test("a carrier whose receipts showed two bases is never narrowed", () => {
    const l = new IdBaseLearning();
    l.record("smsc", "resp_dec_receipt_hex");
    for (let i = 0; i < LEARN_AFTER * 3; i++) l.record("smsc", "same");
    expect(l.learnt("smsc")).toBeNull();
    expect(l.narrow("smsc", readings)).toEqual(readings);
    // Also when the second base shows up after the first was learnt.
    const late = new IdBaseLearning();
    for (let i = 0; i < LEARN_AFTER; i++) late.record("smsc", "same");
    expect(late.learnt("smsc")).toBe("same");
    late.record("smsc", "resp_hex_receipt_dec");
    expect(late.learnt("smsc")).toBeNull();
  });
});
