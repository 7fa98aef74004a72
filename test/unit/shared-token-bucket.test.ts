// adapters/shared/token-bucket.ts: the one token bucket (SMPP TPS, the MM7 submit gate), on a fake clock.
import { describe, expect, test } from "bun:test";
import { TokenBucket } from "../../adapters/shared/token-bucket.ts";

function fakeClock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("TokenBucket", () => {
  test("starts full, refills at the rate, never above its capacity", () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(10, 2, clock.now);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, false]);
    // 10/s: one token per 100 ms.
    expect(bucket.msUntilToken()).toBe(100);
    clock.advance(50);
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.msUntilToken()).toBe(50);
    clock.advance(50);
    expect(bucket.tryTake()).toBe(true);
    clock.advance(10_000);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, false]);
  });

  test("rate 0 is unlimited: every take succeeds at once", () => {
    const bucket = new TokenBucket(0, 1, fakeClock().now);
    for (let i = 0; i < 1000; i++) expect(bucket.take()).toBeUndefined();
  });

  test("waiters are served in arrival order as tokens come; releaseAll frees the rest", async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1000, 1, clock.now);
    expect(bucket.take()).toBeUndefined();
    const order: number[] = [];
    const waits = [1, 2, 3].map((i) => bucket.take()!.then(() => order.push(i)));
    clock.advance(2);
    // The bucket's timer fires (1 ms at 1000/s) and finds two tokens' worth of time gone, capped at one.
    await Bun.sleep(5);
    expect(order).toEqual([1]);
    bucket.releaseAll();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
  });
});
