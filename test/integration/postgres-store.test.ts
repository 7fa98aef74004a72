// What only the PostgreSQL driver does, seen in the database itself: accepts committed in groups (all
// rows of one transaction share its xmin), and held receipts named by their first key whatever order
// the server hands deleted rows back in.
import { afterEach, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { idReadings } from "../../adapters/smpp/message-id.ts";
import type { MessagePayload } from "../../src/domain/message.ts";
import { PostgresStore } from "../../src/store/postgres/store.ts";
import { createTestDatabase, pgAvailable } from "../support/postgres.ts";
import { seeded } from "../support/random.ts";

// Each test's connections closed and database dropped as it ends: the server is shared.
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => {});
}, 30_000);

const payload: MessagePayload = { from: "1", to: "12025550123", subject: "", text: "hi", fallback_text: "", media: [], custom_data: "", callback_url: "https://x.example/cb", metadata: null };
const input = (requestId: string | null) => ({ accountId: "a", requestId, channel: "sms" as const, payload, bodyHash: "h", expiresAt: 10_000_000 });

/** A database, `nodes` stores on it, and a plain connection to look at its rows. */
async function cluster(clock: { t: number }, ...nodes: string[]) {
  const db = await createTestDatabase();
  cleanup.push(() => db.drop());
  const opts = { now: () => clock.t, retryBaseMs: 1000, retryMaxMs: 60_000, receiptWindowMs: 3_600_000, intermediateEvents: false, inFlightPolicy: "at-most-once" as const, random: seeded(7) };
  const stores = await Promise.all(nodes.map((nodeId) => PostgresStore.open({ ...opts, url: db.url, nodeId, poolSize: 4 })));
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  cleanup.push(() => sql.end({ timeout: 1 }), () => Promise.all(stores.map((s) => s.close())));
  return { stores, sql };
}

describe.skipIf(!pgAvailable)("postgres store", () => {
  test("accepts made at once are committed in one transaction; copies among them answer the first copy's message", async () => {
    const { stores, sql } = await cluster({ t: 1000 }, "node-a");
    const store = stores[0]!;
    const sent = [...Array.from({ length: 15 }, (_, i) => input(`r${i}`)), input(null), ...Array.from({ length: 4 }, () => input("r3"))];
    const answers = await Promise.all(sent.map((i) => store.accept(i)));
    expect(answers.filter((a) => !a.replay)).toHaveLength(16);
    for (const copy of answers.slice(16)) expect(copy).toMatchObject({ replay: true, body: answers[3]!.body, messageId: answers[3]!.messageId });
    const [row] = await sql`SELECT COUNT(*)::int AS messages, COUNT(DISTINCT xmin::text)::int AS transactions FROM messages`;
    expect(row).toEqual({ messages: 16, transactions: 1 });
    expect(store.queuedCount()).toBe(16);
  });

  test("a request refused among many fails alone, and the rest still commit in groups", async () => {
    const { stores, sql } = await cluster({ t: 1000 }, "node-a");
    const sent = Array.from({ length: 16 }, (_, i) => (i === 5 ? { ...input("bad"), expiresAt: Number.NaN } : input(`r${i}`)));
    const settled = await Promise.allSettled(sent.map((i) => stores[0]!.accept(i)));
    expect(settled.filter((s) => s.status === "rejected")).toHaveLength(1);
    expect(settled[5]!.status).toBe("rejected");
    const [row] = await sql`SELECT COUNT(*)::int AS messages, COUNT(DISTINCT xmin::text)::int AS transactions FROM messages`;
    // Halving a group of 16 around one bad request: 8 + 4 + 2 + 1 good ones, four transactions.
    expect(row).toEqual({ messages: 15, transactions: 4 });
  });

  test("two nodes sending the same request_ids at once: one message per key, both told the same answer", async () => {
    const { stores, sql } = await cluster({ t: 1000 }, "node-a", "node-b");
    const deadlocks = async () => {
      await sql`SELECT pg_stat_clear_snapshot()`;
      const [r] = await sql`SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()`;
      return r!.n as number;
    };
    const before = await deadlocks();
    // Rounds of keys in opposite orders: groups that locked keys in arrival order would wait on each other in a cycle.
    for (let round = 0; round < 20; round++) {
      const keys = Array.from({ length: 200 }, (_, i) => `k${round}.${i}`);
      const [a, b] = await Promise.all([Promise.all(keys.map((k) => stores[0]!.accept(input(k)))), Promise.all([...keys].reverse().map((k) => stores[1]!.accept(input(k))))]);
      b.reverse();
      for (const [i, answer] of a.entries()) expect(b[i]!.body).toBe(answer.body);
      expect(a.filter((x) => !x.replay).length + b.filter((x) => !x.replay).length).toBe(keys.length);
    }
    const [row] = await sql`SELECT COUNT(*)::int AS n FROM messages`;
    expect(row!.n).toBe(4000);
    // Nor did they wait in a cycle and have the server break it (a deadlock's victim group is retried in
    // halves, so the answers above hold either way). A backend reports its counts as it exits.
    await Promise.all(stores.map((s) => s.close()));
    while ((await sql`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)[0]!.n > 0) await Bun.sleep(20);
    expect(await deadlocks()).toBe(before);
  });

  test("an expired receipt held under several keys is reported under the first, whatever order the rows are deleted in", async () => {
    const clock = { t: 1000 };
    const { stores, sql } = await cluster(clock, "node-a");
    const r = { carrier: "sms", carrierMessageId: "26", readings: idReadings("26"), outcome: "failed" as const, timestamp: 1 };
    expect(await stores[0]!.applyReceipt(r)).toBe("unmatched");
    // Rewrites the first key's row without changing it: its new version now comes last in the table.
    await sql`UPDATE early_receipts SET received_at = received_at WHERE carrier_id = '26'`;
    clock.t += 10_000;
    expect(await stores[0]!.dropStaleEarlyReceipts(5_000)).toEqual([{ carrier: "sms", carrier_id: "26" }]);
  });
});
