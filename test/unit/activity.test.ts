// The status page's recent-errors list: a flood of one error is one counted entry.
import { expect, test } from "bun:test";
import { Activity } from "../../src/activity.ts";

test("60 identical warnings are one entry (count, first and last seen) and push no other error out", () => {
  let now = 1_000;
  const activity = new Activity(() => now);
  activity.noteError({ at: now, level: "error", msg: "fsync failed", fields: { err: "EIO" } });
  for (let i = 0; i < 60; i++) activity.noteError({ at: ++now, level: "warn", msg: "mm7 inbound: missing or wrong Basic credentials", fields: { carrier: "mms" } });
  // Same message about another message is another entry.
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_1" } });
  activity.noteError({ at: ++now, level: "warn", msg: "submit not accepted", fields: { messageId: "msg_2" } });

  const errors = activity.recentErrors();
  expect(errors.map((e) => [e.msg, e.count])).toEqual([
    ["submit not accepted", 1],
    ["submit not accepted", 1],
    ["mm7 inbound: missing or wrong Basic credentials", 60],
    ["fsync failed", 1],
  ]);
  expect(errors[2]).toMatchObject({ first: 1_001, at: 1_060 });
});
