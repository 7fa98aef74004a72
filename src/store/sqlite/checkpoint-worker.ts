// Runs in a Worker thread with its own connection: copies the WAL back into the database file
// (PASSIVE checkpoints never block the writer), so the event loop never pays for checkpoints.
import { Database } from "bun:sqlite";

declare const self: Worker;

let db: Database | null = null;

self.onmessage = (e: MessageEvent<{ open: string } | "checkpoint" | "close">) => {
  const m = e.data;
  try {
    if (typeof m === "object") {
      db = new Database(m.open, { readwrite: true, create: false });
      db.run("PRAGMA busy_timeout = 1000");
      postMessage({ opened: true });
    } else if (m === "checkpoint" && db) {
      const r = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number };
      postMessage({ log: r.log, checkpointed: r.checkpointed });
    } else if (m === "close") {
      db?.close();
      db = null;
      postMessage({ closed: true });
    }
  } catch (err) {
    // Always an answer to a checkpoint request, so the writer knows this one is over and asks again.
    postMessage({ error: String((err as Error)?.message ?? err), done: m === "checkpoint" });
  }
};
