// Intake: new messages and their dedup keys, and the stored answer of a request_id seen before. The dedup
// key is unique in the database, so a copy arriving at any node gets the one answer.
//
// Accepts are committed in groups (group.ts): one statement inserts a group's dedup keys and messages
// and wakes the other nodes, committing on its own (autocommit: no BEGIN/COMMIT round trips), so every
// answer in it is durable when it returns. A copy of a request_id within the group, or one another
// transaction holds, does not insert; its answer is read once that key is committed. A group the
// database refuses is tried again in halves, so one bad request fails alone.
import { newId } from "../../domain/event.ts";
import { StorageUnavailable, type AcceptInput, type Row, type StoredResponse } from "../index.ts";
import { historyLine, toStoredResponse } from "../rows.ts";
import { channelName, type PostgresCore, type Sql, type Tx } from "./core.ts";
import { Groups, type Waiting } from "./group.ts";

/** Groups in flight at once per node, and the most requests in one (one statement's arrays). */
const GROUPS_IN_FLIGHT = 4;
const GROUP_SIZE = 1000;

export function accept(c: PostgresCore, input: AcceptInput): Promise<StoredResponse> {
  c.accepts ??= new Groups((group) => commitGroup(c, group), GROUPS_IN_FLIGHT, GROUP_SIZE);
  return c.accepts.add(input);
}

async function commitGroup(c: PostgresCore, group: Waiting<AcceptInput, StoredResponse>[]): Promise<void> {
  try {
    const answers = await acceptAll(c, group.map((w) => w.item));
    group.forEach((w, i) => w.resolve(answers[i]!));
  } catch (e) {
    if (e instanceof StorageUnavailable || group.length === 1) throw e;
    // The database refused the group, maybe for one bad request: each half again (and so on), so that
    // one fails alone and the rest still commit in groups. The halves go one after the other: the first
    // copy of a request_id in the group is then the one that makes the message, as it was sent first.
    const half = Math.ceil(group.length / 2);
    const retry = (part: typeof group) => commitGroup(c, part).catch((e) => part.forEach((w) => w.reject(e)));
    await retry(group.slice(0, half));
    await retry(group.slice(half));
  }
}

/** Stores what is new of `inputs` in one statement and answers each, in order. */
async function acceptAll(c: PostgresCore, inputs: AcceptInput[]): Promise<StoredResponse[]> {
  const now = c.now();
  const fresh = inputs.map((input) => {
    const id = newId("msg", now, c.random);
    return { input, id, body: JSON.stringify({ id, request_id: input.requestId, status: "accepted" }) };
  });
  // In key order: two groups (on any nodes) that share keys wait for each other in one order, never in a cycle.
  const rows = [...fresh].sort((a, b) => compare(a.input.accountId, b.input.accountId) || compare(a.input.requestId ?? "", b.input.requestId ?? ""));
  const col = <T>(f: (r: (typeof rows)[number]) => T) => rows.map(f);
  const inserted = await c.statement(async (sql, done) => {
    const ids = await sql`WITH input AS (
        SELECT * FROM unnest(${col((r) => r.id)}::text[], ${col((r) => r.input.accountId)}::text[], ${col((r) => r.input.requestId)}::text[],
          ${col((r) => r.input.channel)}::text[], ${col((r) => r.body)}::text[], ${col((r) => r.input.bodyHash)}::text[],
          ${col((r) => r.input.expiresAt)}::bigint[], ${col((r) => JSON.stringify(r.input.payload))}::text[])
          WITH ORDINALITY AS t(id, account_id, request_id, channel, body, body_hash, expires_at, payload, n)
      ), keys AS (
        INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
        SELECT account_id, request_id, id, 200, body, body_hash, ${now} FROM input WHERE request_id IS NOT NULL ORDER BY n
        ON CONFLICT DO NOTHING RETURNING message_id
      ), stored AS (
        INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload)
        SELECT id, account_id, request_id, channel, false, 'accepted', 0, ${now}, ${now}, ${now}, expires_at, ${historyLine(now, "accepted")}, payload
        FROM input WHERE request_id IS NULL OR id IN (SELECT message_id FROM keys)
        RETURNING id, channel
      )
      SELECT id, pg_notify(${channelName}, channel) FROM stored`;
    done.queued += ids.length;
    return new Set(ids.map((r) => r.id as string));
  });
  const copies = fresh.filter((f) => !inserted.has(f.id));
  const stored = new Map<string, Row>();
  if (copies.length > 0) {
    const found = await c.read(
      (sql) => sql`SELECT account_id, request_id, message_id, status, response, body_hash FROM dedup
        WHERE (account_id, request_id) IN (SELECT * FROM unnest(${copies.map((f) => f.input.accountId)}::text[], ${copies.map((f) => f.input.requestId)}::text[]))`,
    );
    for (const row of found) stored.set(`${row.account_id}\n${row.request_id}`, row);
  }
  return fresh.map(({ input, id, body }) =>
    inserted.has(id)
      ? { status: 200, body, replay: false, bodyDiffers: false, messageId: id }
      : toStoredResponse(stored.get(`${input.accountId}\n${input.requestId}`)!, input.bodyHash),
  );
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function rememberRefusal(c: PostgresCore, accountId: string, requestId: string, status: number, body: string, bodyHash: string): Promise<StoredResponse> {
  return c.tx(async (tx) => {
    const ins = await tx`INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
      VALUES (${accountId}, ${requestId}, NULL, ${status}, ${body}, ${bodyHash}, ${c.now()}) ON CONFLICT DO NOTHING RETURNING 1`;
    if (ins.length === 0) return (await readRequest(tx, accountId, requestId, bodyHash))!;
    return { status, body, replay: false, bodyDiffers: false, messageId: null };
  });
}

export function lookupRequest(c: PostgresCore, accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
  return c.read((sql) => readRequest(sql, accountId, requestId, bodyHash));
}

async function readRequest(sql: Sql | Tx, accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
  const [row] = await sql`SELECT message_id, status, response, body_hash FROM dedup WHERE account_id = ${accountId} AND request_id = ${requestId}`;
  return row ? toStoredResponse(row, bodyHash) : null;
}
