// What the store keeps for routing, on a real SQLite file with a fake clock: the carrier of each claim,
// a message pinned to the carrier that may hold it, and the carriers that refused it for good.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { MessagePayload } from "../../src/domain/message.ts";
import { SqliteStore } from "../../src/store/sqlite/store.ts";
import { tempDir } from "../support/app.ts";
import { seeded } from "../support/random.ts";

function open(clock: { t: number }, inFlightPolicy: "at-most-once" | "at-least-once" = "at-most-once", path = join(tempDir(), "g.db")) {
  return SqliteStore.open(path, { now: () => clock.t, retryBaseMs: 1000, retryMaxMs: 60000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy, random: seeded(1) });
}
const payload: MessagePayload = { from: "1", to: "447700900123", subject: "", text: "hi", fallback_text: "fb", media: [], custom_data: null, callback_url: "https://x.example/cb", metadata: null };
const input = { accountId: "a", requestId: null, channel: "sms" as const, payload, bodyHash: "h", expiresAt: 10_000_000 };

describe("store: routing columns", () => {
  test("each claim records its carrier; a retry the route keeps on its carrier comes back pinned, another comes back free", async () => {
    const clock = { t: 1000 };
    const store = open(clock);
    await store.accept(input);
    await store.accept(input);
    const [kept, free] = await store.claimDue("sms", 10, () => "uk_a");
    expect([kept!.carrier, free!.carrier]).toEqual(["uk_a", "uk_a"]);
    const busy = { kind: "temporary" as const, code: "smpp:0x58", message: "ESME_RTHROTTLED" };
    await store.recordSubmit(kept!, "uk_a", busy, { pin: true, elsewhere: false });
    await store.recordSubmit(free!, "uk_a", busy, { pin: false, elsewhere: false });
    clock.t += 120_000;
    const seen = new Map<string, string | null>();
    await store.claimDue("sms", 10, (x) => {
      seen.set(x.id, x.pinned);
      return x.pinned ?? "uk_b";
    });
    expect(seen.get(kept!.id)).toBe("uk_a");
    expect(seen.get(free!.id)).toBeNull();
    const details = ((await store.describe(kept!.id)) as { history: { detail?: string }[] }).history.map((h) => h.detail ?? "");
    expect(details[1]).toBe("claimed for uk_a");
    expect(details[2]).toStartWith("temporary smpp:0x58 from uk_a: ESME_RTHROTTLED; retry in ");
    expect(details[3]).toBe("claimed for uk_a");
    expect((await store.getMessage(free!.id))!.carrier).toBe("uk_b");
    await store.close();
  });

  test("a permanent refusal the route lets another carrier try: back in the queue, that carrier listed as refused", async () => {
    const clock = { t: 1000 };
    const store = open(clock);
    await store.accept(input);
    const [m] = await store.claimDue("sms", 10, () => "uk_a");
    const r = await store.recordSubmit(m!, "uk_a", { kind: "permanent", code: "smpp:0x0b", message: "ESME_RINVDSTADR", fallbackEligible: false }, { pin: false, elsewhere: true });
    expect(r).toEqual({ fallback: false, final: null });
    const [again] = await store.claimDue("sms", 10, (x) => (x.refused.includes("uk_a") ? "uk_b" : "uk_a"));
    expect(again!.refused).toEqual(["uk_a"]);
    expect(again!.carrier).toBe("uk_b");
    await store.close();
  });

  test("at-least-once recovery resends only to the carrier the message was claimed for", async () => {
    const clock = { t: 1000 };
    const path = join(tempDir(), "g.db");
    const first = open(clock, "at-least-once", path);
    await first.accept(input);
    await first.claimDue("sms", 10, () => "uk_a");
    await first.close();
    const second = open(clock, "at-least-once", path);
    expect(await second.recoverInFlight()).toBe(1);
    const [m] = await second.claimDue("sms", 10, (x) => x.pinned ?? "uk_b");
    expect(m!.pinned).toBe("uk_a");
    expect(m!.carrier).toBe("uk_a");
    await second.close();
  });
});
