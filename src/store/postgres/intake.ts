// Intake: a new message and its dedup key in one transaction, and the stored answer of a request_id seen
// before. The dedup key is unique in the database, so a copy arriving at any node gets the one answer.
import { newId } from "../../domain/event.ts";
import type { AcceptInput, StoredResponse } from "../index.ts";
import { historyLine } from "../rows.ts";
import { channelName, type PostgresCore, type Sql, type Tx } from "./core.ts";

export async function accept(c: PostgresCore, input: AcceptInput): Promise<StoredResponse> {
  const r = await c.tx(async (tx): Promise<StoredResponse> => {
    const now = c.now();
    const id = newId("msg", now, c.random);
    const body = JSON.stringify({ id, request_id: input.requestId, status: "accepted" });
    if (input.requestId !== null) {
      // A concurrent insert of the same key on another node waits here for that one's COMMIT.
      const ins = await tx`INSERT INTO dedup (account_id, request_id, message_id, status, response, body_hash, created_at)
        VALUES (${input.accountId}, ${input.requestId}, ${id}, 200, ${body}, ${input.bodyHash}, ${now}) ON CONFLICT DO NOTHING RETURNING 1`;
      if (ins.length === 0) return (await readRequest(tx, input.accountId, input.requestId, input.bodyHash))!;
    }
    await tx`INSERT INTO messages (id, account_id, request_id, channel, fallback, state, attempts, created_at, updated_at, due_at, expires_at, history, payload)
      VALUES (${id}, ${input.accountId}, ${input.requestId}, ${input.channel}, false, 'accepted', 0, ${now}, ${now}, ${now}, ${input.expiresAt}, ${historyLine(now, "accepted")}, ${JSON.stringify(input.payload)})`;
    await tx`SELECT pg_notify(${channelName}, ${input.channel})`;
    return { status: 200, body, replay: false, bodyDiffers: false, messageId: id };
  });
  if (!r.replay) c.queued++;
  return r;
}

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
  if (!row) return null;
  return { status: row.status as number, body: row.response as string, replay: true, bodyDiffers: row.body_hash !== bodyHash, messageId: row.message_id as string | null };
}
