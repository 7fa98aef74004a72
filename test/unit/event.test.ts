// The webhook event's fields (contract section 6) and the time-sortable ids the purge relies on.
import { describe, expect, test } from "bun:test";
import { deliveryEvent, idFloor, newId } from "../../src/domain/event.ts";
import type { MessagePayload } from "../../src/domain/message.ts";

const payload: MessagePayload = { from: "18885551234", to: "12025550123", subject: "", text: "hi", fallback_text: "", media: [], custom_data: "cd=1", callback_url: "https://x.example/cb", metadata: null };
const m = { id: "msg_1", requestId: "r1", channel: "sms" as const, fallback: true, payload };
const err = { code: "x:1", message: "no" };

describe("deliveryEvent", () => {
  test("fields as the contract names them; timestamp in seconds with milliseconds; `to` in 00 form", () => {
    expect(deliveryEvent(m, "delivered", "evt_1", 1760524800123, "c1")).toEqual({
      event_id: "evt_1",
      message_id: "msg_1",
      request_id: "r1",
      custom_data: "cd=1",
      status: "delivered",
      channel: "sms",
      fallback: true,
      timestamp: 1760524800.123,
      to: "0012025550123",
      from: "18885551234",
      carrier_message_id: "c1",
    });
  });

  test("`error` only on failed events that have one", () => {
    expect(deliveryEvent(m, "failed", "e", 0, null, err).error).toEqual(err);
    expect("error" in deliveryEvent(m, "sent", "e", 0, null, err)).toBe(false);
    expect("error" in deliveryEvent(m, "delivered", "e", 0, null, err)).toBe(false);
    expect("error" in deliveryEvent(m, "failed", "e", 0, null)).toBe(false);
  });
});

describe("ids", () => {
  test("prefix, 9 base-32 digits of milliseconds, 12 random digits", () => {
    expect(newId("msg", 0, () => 0)).toBe("msg_000000000000000000000");
    expect(newId("evt", 32 * 31 + 31, () => 0.999)).toBe("evt_0000000zzzzzzzzzzzzzz");
    expect(newId("evt", 32 * 32 + 31, () => 0)).toBe("evt_00000010z000000000000");
    expect(newId("msg", 1760524800123, () => 0.5)).toMatch(/^msg_[0-9a-hjkmnp-tv-z]{9}g{12}$/);
    expect(newId("msg", 32 ** 9 - 1, () => 0)).toBe("msg_zzzzzzzzz000000000000");
  });

  test("later times sort after earlier ones, whatever the random part", () => {
    let t = 1_700_000_000_000;
    for (let i = 0; i < 200; i++) {
      const step = 1 + ((i * 7919) % 100_000);
      expect(newId("msg", t, () => 0.999) < newId("msg", t + step, () => 0)).toBe(true);
      t += step;
    }
  });

  test("idFloor is the smallest id of its millisecond", () => {
    const t = 1_760_524_800_123;
    expect(idFloor("msg", t)).toBe(newId("msg", t, () => 0));
    expect(idFloor("msg", t) <= newId("msg", t, Math.random)).toBe(true);
    expect(newId("msg", t - 1, () => 0.999) < idFloor("msg", t)).toBe(true);
  });
});
