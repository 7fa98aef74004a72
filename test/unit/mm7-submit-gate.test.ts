// Concurrency and rate admission for submits.
import { describe, expect, test } from "bun:test";
import { SubmitGate } from "../../adapters/mm7/submit-gate.ts";

describe("SubmitGate", () => {
  test("never more than `concurrency` in flight; FIFO", async () => {
    const gate = new SubmitGate({ concurrency: 3, rate: 0, burst: 1, queueLimit: 100 });
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        expect(await gate.acquire()).toBe("go");
        order.push(i);
        active++;
        peak = Math.max(peak, active);
        await Bun.sleep(2);
        active--;
        gate.release();
      }),
    );
    expect(peak).toBe(3);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  test("rate: 50/s with burst 1 spaces 11 admissions over ≥ 200 ms", async () => {
    const gate = new SubmitGate({ concurrency: 100, rate: 50, burst: 1, queueLimit: 100 });
    const t0 = performance.now();
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 11 }, async () => {
        await gate.acquire();
        times.push(performance.now() - t0);
        gate.release();
      }),
    );
    expect(times[10]!).toBeGreaterThanOrEqual(195);
    expect(times[10]!).toBeLessThan(600);
  });

  test("queue limit answers busy; stop answers queued and new ones stopped; idle waits for in-flight", async () => {
    const gate = new SubmitGate({ concurrency: 1, rate: 0, burst: 1, queueLimit: 2 });
    expect(await gate.acquire()).toBe("go");
    const q1 = gate.acquire();
    const q2 = gate.acquire();
    expect(await gate.acquire()).toBe("busy");
    gate.stop();
    expect(await q1).toBe("stopped");
    expect(await q2).toBe("stopped");
    expect(await gate.acquire()).toBe("stopped");
    let idle = false;
    const waiting = gate.idle().then(() => (idle = true));
    await Bun.sleep(5);
    expect(idle).toBe(false);
    gate.release();
    await waiting;
    expect(idle).toBe(true);
  });
});
