// The status page's recent-errors list: a flood of one error is one counted entry.
import { expect, test } from "bun:test";
import { Activity } from "../../src/observe/activity.ts";

test("60 identical warnings are one entry (count, first and last seen) and push no other error out", () => {
  let now = 1_000;
  const activity = new Activity(() => now);
  activity.noteError({ at: now, level: "error", msg: "fsync failed", fields: { err: "EIO" } });
  for (let i = 0; i < 60; i++) activity.noteError({ at: ++now, level: "warn", msg: "mm7 inbound: missing or wrong Basic credentials", fields: { carrier: "mms" } });
  // One kind (message and code) at one carrier about two messages is one entry showing the latest.
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_1", carrier: "sms", code: "smpp:0x45" } });
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_2", carrier: "sms", code: "smpp:0x45" } });
  // Another code, or another carrier, is another problem.
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_3", carrier: "sms", code: "smpp:0x58" } });
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_4", carrier: "mms", code: "smpp:0x45" } });

  const errors = activity.recentErrors();
  expect(errors.map((e) => [e.msg, e.target, e.fields.code ?? "", e.count])).toEqual([
    ["submit not accepted", "mms", "smpp:0x45", 1],
    ["submit not accepted", "sms", "smpp:0x58", 1],
    ["submit not accepted", "sms", "smpp:0x45", 2],
    ["mm7 inbound: missing or wrong Basic credentials", "mms", "", 60],
    ["fsync failed", "", "", 1],
  ]);
  expect(errors[2]!.fields.messageId).toBe("msg_2");
  expect(errors[3]).toMatchObject({ first: 1_001, at: 1_060 });
});

test("an unreachable webhook URL is one line however many messages it fails, and does not hide the rest", () => {
  let now = 0;
  const activity = new Activity(() => now, 10_000, 30, 5);
  activity.noteError({ at: now, level: "error", msg: "mm7 carrier alarm: configuration problem", fields: { carrier: "mms" } });
  for (let i = 0; i < 60; i++) {
    activity.noteError({ at: ++now, level: "warn", msg: "webhook not delivered; will retry", fields: { url: "https://hooks.example/cb", why: i % 2 ? "connect ECONNREFUSED" : "no answer within 10000 ms" } });
  }
  activity.noteError({ at: ++now, level: "warn", msg: "webhook not delivered; will retry", fields: { url: "https://other.example/cb", why: "HTTP 500" } });
  const errors = activity.recentErrors();
  expect(errors.map((e) => [e.target, e.count])).toEqual([
    ["https://other.example/cb", 1],
    ["https://hooks.example/cb", 60],
    ["mms", 1],
  ]);
});

test("per-carrier submit outcomes land in the current interval", () => {
  let now = 25_000;
  const activity = new Activity(() => now, 10_000, 3);
  activity.submitted("sms", "ok");
  activity.submitted("sms", "ok");
  activity.submitted("sms", "temporary");
  now = 31_000;
  activity.submitted("mms", "permanent");
  expect(activity.throughput().map((b) => [b.start, b.submits])).toEqual([
    [10_000, {}],
    [20_000, { sms: { ok: 2, temporary: 1, permanent: 0 } }],
    [30_000, { mms: { ok: 0, temporary: 0, permanent: 1 } }],
  ]);
});
