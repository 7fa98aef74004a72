import { describe, expect, test } from "bun:test";
import { IllegalTransition, assertTransition, isFinal, type MessageState } from "../../src/domain/message.ts";
import { backoffMs } from "../../src/domain/outcome.ts";

const all: MessageState[] = ["accepted", "submitting", "submitted", "delivered", "failed", "sent"];
const legal = new Set([
  "accepted>submitting",
  "accepted>failed",
  "submitting>submitted",
  "submitting>accepted",
  "submitting>failed",
  "submitted>delivered",
  "submitted>failed",
  "submitted>sent",
  "submitted>accepted",
]);

describe("message states", () => {
  for (const from of all) {
    for (const to of all) {
      const ok = legal.has(`${from}>${to}`);
      test(`${from} → ${to} is ${ok ? "legal" : "illegal"}`, () => {
        if (ok) expect(() => assertTransition(from, to, "m")).not.toThrow();
        else expect(() => assertTransition(from, to, "m")).toThrow(IllegalTransition);
      });
    }
  }
  test("final states", () => {
    expect(all.filter(isFinal)).toEqual(["delivered", "failed", "sent"]);
  });
  test("backoff grows, is capped, and jitters within [ceiling/2, ceiling]", () => {
    expect(backoffMs(1, 1000, 60000, () => 0)).toBe(500);
    expect(backoffMs(1, 1000, 60000, () => 1)).toBe(1000);
    expect(backoffMs(4, 1000, 60000, () => 1)).toBe(8000);
    expect(backoffMs(30, 1000, 60000, () => 1)).toBe(60000);
  });
});
