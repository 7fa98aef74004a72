// The outbox: webhook events written with each state change, read when due and marked as they go.
import type { PendingEvent, WebhookKey } from "../index.ts";
import { toPendingEvent } from "../rows.ts";
import type { Row, SqliteCore } from "./core.ts";

/** Pending events due by `now`, oldest due first, each the oldest pending event of its message. */
export async function dueEvents(c: SqliteCore, now: number, limit: number, busy: WebhookKey[] = []): Promise<PendingEvent[]> {
  const due = (c.s.eventsDue!.all(now, JSON.stringify(busy), limit) as Row[]).map(toPendingEvent);
  // What was read may be committed but not yet fsynced, and a power cut could undo it: read first,
  // then wait for the disk, so the wait covers everything read (waiting first would not).
  if (due.length > 0) await c.writer.whenDurable();
  return due;
}

/** When the next pending event not yet due becomes due, or null. */
export async function nextEventDue(c: SqliteCore, now: number): Promise<number | null> {
  return (c.s.nextEventDue!.get(now) as { t: number | null }).t;
}

export function eventsDelivered(c: SqliteCore, seqs: number[]): Promise<void> {
  return c.writer.write(() => {
    const now = c.now();
    for (const seq of seqs) c.s.eventDelivered!.run(now, seq);
  });
}

export function eventsRetry(c: SqliteCore, seqs: number[], dueAt: number, error: string): Promise<void> {
  return c.writer.write(() => {
    const now = c.now();
    for (const seq of seqs) c.s.eventRetry!.run(now, dueAt, error, seq);
  });
}

export function eventsDead(c: SqliteCore, seqs: number[], error: string): Promise<void> {
  return c.writer.write(() => {
    const now = c.now();
    for (const seq of seqs) c.s.eventDead!.run(now, error, seq);
  });
}
