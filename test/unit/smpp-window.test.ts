// adapters/smpp/window.ts without a socket: slots, sequence numbers, deadlines, and what the
// outstanding requests learn when the link goes.
import { describe, expect, test } from "bun:test";
import { Command, type Pdu } from "../../adapters/smpp/pdu.ts";
import { SmppWindow, type Response } from "../../adapters/smpp/window.ts";

function makeWindow(size = 2, timeoutMs = 1000) {
  let now = 0;
  const counters = { timeouts: 0, maxInFlight: 0 };
  const window = new SmppWindow(size, timeoutMs, () => now, counters);
  return { window, counters, advance: (ms: number) => (now += ms) };
}

const resp = (sequence: number): Pdu => ({ commandId: Command.submit_sm_resp, status: 0, sequence, id: `id${sequence}` });

/** What each promise has settled to so far (undefined while pending). */
function watch(promises: Promise<Response>[]) {
  const seen: (Response | undefined)[] = promises.map(() => undefined);
  promises.forEach((p, i) => void p.then((r) => (seen[i] = r)));
  return seen;
}

describe("SmppWindow slots", () => {
  test("grants `size` slots at once, then queues waiters in arrival order until open", async () => {
    const { window, counters } = makeWindow(2);
    expect(window.acquire()).toBe(true);
    expect(window.acquire()).toBe(true);
    const order: number[] = [];
    const third = window.acquire();
    const fourth = window.acquire();
    expect(third).toBeInstanceOf(Promise);
    void (third as Promise<boolean>).then(() => order.push(3));
    void (fourth as Promise<boolean>).then(() => order.push(4));
    // Closed (not bound): a released slot is not handed on.
    window.release();
    await Bun.sleep(0);
    expect(order).toEqual([]);
    window.open();
    await Bun.sleep(0);
    expect(order).toEqual([3]);
    window.release();
    await Bun.sleep(0);
    expect(order).toEqual([3, 4]);
    expect(window.inFlight).toBe(2);
    expect(counters.maxInFlight).toBe(2);
  });

  test("a waiter arriving while others wait queues behind them even when a slot is free", async () => {
    const { window } = makeWindow(1);
    window.open();
    expect(window.acquire()).toBe(true);
    const waiting = window.acquire() as Promise<boolean>;
    window.release();
    expect(await waiting).toBe(true);
    expect(window.waiting).toBe(0);
  });

  test("refuseWaiters answers every waiter false; pause holds slots back", async () => {
    const { window, advance } = makeWindow(1);
    window.open();
    window.pause(100);
    const paused = window.acquire();
    expect(paused).toBeInstanceOf(Promise);
    expect(window.paused).toBe(true);
    advance(100);
    expect(window.paused).toBe(false);
    window.refuseWaiters();
    expect(await paused).toBe(false);
    expect(window.inFlight).toBe(0);
  });
});

describe("SmppWindow requests", () => {
  test("sequence numbers run 1.. and skip ones still outstanding", () => {
    const { window } = makeWindow();
    expect(window.nextSequence()).toBe(1);
    void window.track(2);
    expect(window.nextSequence()).toBe(3);
  });

  test("a response completes its request; one for no request is reported", async () => {
    const { window } = makeWindow();
    const p = window.track(7);
    expect(window.complete(resp(8))).toBe(false);
    expect(window.complete(resp(7))).toBe(true);
    expect(await p).toMatchObject({ sequence: 7, id: "id7" });
    expect(window.outstanding).toBe(0);
  });

  test("expire resolves only requests past their deadline, in order, and counts them", async () => {
    const { window, counters, advance } = makeWindow(2, 1000);
    const seen = watch([window.track(1)]);
    advance(500);
    const later = watch([window.track(2)]);
    advance(500);
    expect(window.expire()).toEqual([1]);
    await Bun.sleep(0);
    expect(seen[0]).toBe("timeout");
    expect(later[0]).toBeUndefined();
    expect(counters.timeouts).toBe(1);
    advance(499);
    expect(window.expire()).toEqual([]);
    advance(1);
    expect(window.expire()).toEqual([2]);
  });

  test("cancelAll tells requests handed to the socket (link-down) from those never written (unsent)", async () => {
    const { window } = makeWindow();
    const seen = watch([window.track(1), window.track(2), window.track(3)]);
    window.markWritten([1, 3]);
    expect(window.cancelAll()).toBe(3);
    await Bun.sleep(0);
    expect(seen).toEqual(["link-down", "unsent", "link-down"]);
    expect(window.outstanding).toBe(0);
    // Late responses after the drop belong to nothing.
    expect(window.complete(resp(1))).toBe(false);
  });
});
