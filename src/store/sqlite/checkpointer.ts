// When the WAL is copied back into the database file. SQLite's automatic checkpoint runs inside
// COMMIT on the writer's thread, which here is the event loop: measured at ~23 µs of every accept at
// 64 connections. So the writer turns it off and a worker thread checkpoints instead, after every few
// commits. But the WAL only starts over from its beginning when a write begins with every frame
// copied, which a busy writer never gives a background checkpoint (measured: 1.2 GB of WAL after 12 s
// at 64 connections). So once the WAL holds more than a cap, the writer runs a RESTART checkpoint
// itself: the worker has already copied nearly everything, so it is short, and the WAL starts over.
import type { Database } from "bun:sqlite";
import { busyTimeoutMs } from "./db.ts";

/** Frames (pages) the WAL may hold before the writer restarts it (≈ 32 MiB with 4 KiB pages). */
const restartAtFrames = 8192;
/** Commits between two background checkpoints. */
const commitsPerCheckpoint = 32;

export class Checkpointer {
  private readonly worker: Worker;
  private running = false;
  private commitsSince = 0;
  private closed = false;
  /** Frames in the WAL at the last checkpoint's end, and how many it had copied. */
  lastLog = 0;
  lastCheckpointed = 0;
  checkpoints = 0;
  restarts = 0;

  constructor(
    private readonly db: Database,
    path: string,
    private readonly onError: (message: string) => void,
  ) {
    this.worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href);
    this.worker.unref();
    this.worker.onmessage = (e: MessageEvent<{ log?: number; checkpointed?: number; error?: string; closed?: boolean; done?: boolean }>) => {
      const r = e.data;
      if (r.closed) this.onClosed?.();
      if (r.error) this.onError(r.error);
      // A failed checkpoint (disk full, I/O error) is over too: the next commits ask for another.
      if (r.done) this.running = false;
      if (r.log !== undefined) {
        this.running = false;
        this.checkpoints++;
        this.lastLog = r.log;
        this.lastCheckpointed = r.checkpointed ?? 0;
        if (r.log > restartAtFrames) this.restart();
      }
    };
    this.worker.postMessage({ open: path });
  }

  /** Called after every durable commit. */
  committed(): void {
    if (this.closed || ++this.commitsSince < commitsPerCheckpoint || this.running) return;
    this.commitsSince = 0;
    this.running = true;
    this.worker.postMessage("checkpoint");
  }

  /**
   * Never waits: with a reader holding an old snapshot (an admin command, a backup) the RESTART would
   * otherwise sit in busy_timeout on the event loop. Busy now means: try again after the next checkpoint.
   */
  private restart(): void {
    this.restarts++;
    try {
      this.db.run("PRAGMA busy_timeout = 0");
      this.db.run("PRAGMA wal_checkpoint(RESTART)");
    } catch (e) {
      this.onError(String((e as Error).message));
    } finally {
      this.db.run(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    }
  }

  private onClosed: (() => void) | null = null;

  /** Lets the worker close its connection (releasing its locks) before the thread is ended. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.race([new Promise<void>((resolve) => ((this.onClosed = resolve), this.worker.postMessage("close"))), Bun.sleep(2000)]);
    this.worker.terminate();
  }
}
