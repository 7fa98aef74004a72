// adapters/shared/backoff.ts: the one jittered backoff (dispatcher retries, webhooks, SMPP reconnects).
import { describe, expect, test } from "bun:test";
import { jitteredBackoffMs } from "../../adapters/shared/backoff.ts";

describe("jitteredBackoffMs", () => {
  test("grows, is capped, and jitters within [ceiling/2, ceiling]", () => {
    expect(jitteredBackoffMs(1, 1000, 60000, () => 0)).toBe(500);
    expect(jitteredBackoffMs(1, 1000, 60000, () => 1)).toBe(1000);
    expect(jitteredBackoffMs(4, 1000, 60000, () => 1)).toBe(8000);
    expect(jitteredBackoffMs(30, 1000, 60000, () => 1)).toBe(60000);
  });
});
