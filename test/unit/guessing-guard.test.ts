// The guard against credential guessing (Channel API, /mm7, admin): who counts as one client, and what
// is forgotten when too many clients are remembered. Address literals only; nothing is dialled.
import { expect, test } from "bun:test";
import { GuessingGuard } from "../../src/http/auth.ts";
import { clientGroup } from "../../src/egress/address.ts";

const LIMIT = 30;

test("an IPv6 client is its /64: fresh addresses from one /64 share one count; another /64 does not", () => {
  const guard = new GuessingGuard(LIMIT, () => 0);
  for (let i = 1; i <= LIMIT; i++) guard.failed(`2001:db8:1:2::${i.toString(16)}`);
  expect(guard.blocked("2001:db8:1:2:ffff:ffff:ffff:fffe")).toBe(true);
  expect(guard.blocked("2001:0db8:0001:0002::abcd")).toBe(true);
  expect(guard.blocked("2001:db8:1:3::1")).toBe(false);
  expect(guard.blocked("2001:db8:1::1")).toBe(false);
});

test("IPv4 is counted per address, written plain or IPv4-mapped", () => {
  const guard = new GuessingGuard(LIMIT, () => 0);
  for (let i = 0; i < LIMIT; i++) guard.failed("::ffff:192.0.2.7");
  expect(guard.blocked("192.0.2.7")).toBe(true);
  expect(guard.blocked("192.0.2.8")).toBe(false);
  expect([clientGroup("192.0.2.7"), clientGroup("::ffff:c000:207"), clientGroup("2001:db8::1"), clientGroup("unknown")]).toEqual([
    "192.0.2.7",
    "192.0.2.7",
    "2001:db8:0:0::/64",
    "unknown",
  ]);
});

test("past 100,000 clients the oldest is forgotten, not every lockout at once", () => {
  const guard = new GuessingGuard(3, () => 0);
  const addr = (i: number) => `198.18.${i >> 8}.${i & 255}`;
  for (let i = 0; i < 3; i++) guard.failed("192.0.2.1"); // the oldest lockout
  for (let i = 0; i < 99_998; i++) guard.failed(addr(i));
  for (let i = 0; i < 3; i++) guard.failed("192.0.2.2"); // a recent lockout: the 100,000th client
  expect(guard.blocked("192.0.2.2")).toBe(true);
  guard.failed(addr(99_998)); // one client too many
  expect(guard.blocked("192.0.2.2")).toBe(true);
  expect(guard.blocked("192.0.2.1")).toBe(false);
});

test("a client whose minute has passed starts a new count", () => {
  let now = 0;
  const guard = new GuessingGuard(3, () => now);
  for (let i = 0; i < 3; i++) guard.failed("192.0.2.1");
  expect(guard.blocked("192.0.2.1")).toBe(true);
  now = 60_001;
  expect(guard.blocked("192.0.2.1")).toBe(false);
  guard.failed("192.0.2.1");
  expect(guard.blocked("192.0.2.1")).toBe(false);
});
