// "Exactly one final event" is only meaningful once nothing more can happen: this waits until the
// gateway is idle for the messages in question — none of them still open (a message backing off keeps
// its due_at until it is final, so waiting for that waits for its next backoff to pass and be acted
// on), and none of their events still pending (an event waiting for its retry is pending too). Every
// event the gateway will ever POST for them has then been answered by the sink. It reads the database
// (the in-process store's, or the file of a running binary: WAL, read-only beside it).
import { Database } from "bun:sqlite";

/** What the gateway still has to do for `ids` (every message when omitted), or null when idle. */
function busyWith(db: Database, ids?: readonly string[]): string | null {
  const scope = ids ? ` AND message_id IN (SELECT value FROM json_each(?))` : "";
  const args = ids ? [JSON.stringify(ids)] : [];
  const open = (db.query(`SELECT COUNT(*) AS n FROM messages WHERE due_at IS NOT NULL${scope.replace("message_id", "id")}`).get(...args) as { n: number }).n;
  const pending = (db.query(`SELECT COUNT(*) AS n FROM events WHERE state = 'pending'${scope}`).get(...args) as { n: number }).n;
  if (open + pending === 0) return null;
  return `${open} message(s) not final, ${pending} event(s) pending`;
}

/** Waits until `busyWith` is null; `db` is a Database or the path of the gateway's database file. */
export async function untilIdle(db: Database | string, ids?: readonly string[], timeoutMs = 30000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let busy: string | null = "not looked yet";
  for (;;) {
    if (typeof db === "string") {
      const file = new Database(db, { readonly: true });
      try {
        busy = busyWith(file, ids);
      } finally {
        file.close();
      }
    } else busy = busyWith(db, ids);
    if (busy === null) return;
    if (Date.now() > until) throw new Error(`gateway not idle after ${timeoutMs} ms: ${busy}`);
    await Bun.sleep(20);
  }
}
