// Intake: a new message and its dedup key in one write, and the stored answer of a request_id seen before.
import { newId } from "../../domain/event.ts";
import type { AcceptInput, StoredResponse } from "../index.ts";
import { historyLine, toStoredResponse } from "../rows.ts";
import type { Row, SqliteCore } from "./core.ts";

/**
 * Stores a new message and its dedup key in one transaction, or returns the stored answer for a
 * request_id already seen (also when the first copy is in the same group commit).
 */
export function accept(c: SqliteCore, input: AcceptInput): Promise<StoredResponse> {
  return c.tx((): StoredResponse => {
    const now = c.now();
    const id = newId("msg", now, c.random);
    const body = JSON.stringify({ id, request_id: input.requestId, status: "accepted" });
    if (input.requestId !== null) {
      const r = c.s.dedupInsert!.run(input.accountId, input.requestId, id, 200, body, input.bodyHash, now);
      if (r.changes === 0) return replay(c, input.accountId, input.requestId, input.bodyHash);
    }
    c.s.messageInsert!.run(
      id,
      input.accountId,
      input.requestId,
      input.channel,
      now,
      now,
      now,
      input.expiresAt,
      historyLine(now, "accepted"),
      JSON.stringify(input.payload),
    );
    c.queuedDelta++;
    return { status: 200, body, replay: false, bodyDiffers: false, messageId: id };
  });
}

/** Remembers a permanent refusal (400/403) for a request_id so a retry gets the same answer. */
export function rememberRefusal(c: SqliteCore, accountId: string, requestId: string, status: number, body: string, bodyHash: string): Promise<StoredResponse> {
  return c.writer.write((): StoredResponse => {
    const r = c.s.dedupInsert!.run(accountId, requestId, null, status, body, bodyHash, c.now());
    if (r.changes === 0) return replay(c, accountId, requestId, bodyHash);
    return { status, body, replay: false, bodyDiffers: false, messageId: null };
  });
}

export async function lookupRequest(c: SqliteCore, accountId: string, requestId: string, bodyHash: string): Promise<StoredResponse | null> {
  const r = readRequest(c, accountId, requestId, bodyHash);
  // The row may be committed but its fsync still running: an answer is only told once it is on disk.
  if (r) await c.writer.whenDurable();
  return r;
}

function readRequest(c: SqliteCore, accountId: string, requestId: string, bodyHash: string): StoredResponse | null {
  const row = c.s.dedupGet!.get(accountId, requestId) as Row | null;
  return row ? toStoredResponse(row, bodyHash) : null;
}

function replay(c: SqliteCore, accountId: string, requestId: string, bodyHash: string): StoredResponse {
  return readRequest(c, accountId, requestId, bodyHash)!;
}
