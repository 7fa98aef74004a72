// A WAL fsync layer for tests: every fsync is the gateway's own (fdatasyncWal), but the first one that
// starts while a hold's `covers()` is true waits until the test releases it. With it a test can stop the
// disk at the exact fsync that makes a write durable and look at what has left the gateway meanwhile.
import { fdatasyncWal, type GroupCommit, type WalSync } from "../../src/store/sqlite/db.ts";

export interface Hold {
  /** The fsync covering this hold has started and is held. */
  readonly started: boolean;
  /** Runs the held fsync; resolves after it has completed and its writes were settled. */
  release(): Promise<void>;
  /** Ends the held fsync with `error` instead of running it: the disk's I/O error. */
  fail(error: Error): void;
}

type Finish = (error: Error | null) => Promise<void>;

export class HeldSync implements WalSync {
  /** "fsynced:<name>" once each held fsync has completed; tests add their own marks to see the order. */
  readonly timeline: string[] = [];
  private readonly waiting: { name: string; covers: () => boolean; fire: (finish: Finish) => void }[] = [];
  private readonly held = new Set<Finish>();

  /** Holds the first fsync that starts while `covers()` is true (e.g. "the write's row is committed"). */
  hold(name: string, covers: () => boolean): Hold {
    let finish: Finish | null = null;
    this.waiting.push({ name, covers, fire: (f) => (finish = f) });
    const run = (error: Error | null) => {
      if (!finish) throw new Error(`the fsync for ${name} has not started`);
      return finish(error);
    };
    return {
      get started() {
        return finish !== null;
      },
      release: () => run(null),
      fail: (error) => void run(error),
    };
  }

  /** Lets every held fsync run and holds no more (a test's cleanup, also after a failed assertion). */
  async releaseAll(): Promise<void> {
    this.waiting.length = 0;
    await Promise.all([...this.held].map((finish) => finish(null)));
  }

  sync(fd: number, lone: boolean, done: (error: unknown) => void): void {
    this.lones.push(lone);
    const i = this.waiting.findIndex((h) => h.covers());
    if (i < 0) return fdatasyncWal.sync(fd, lone, done);
    const [h] = this.waiting.splice(i, 1);
    const finish: Finish = (error) => {
      if (!this.held.delete(finish)) return Promise.resolve();
      if (error) {
        done(error);
        return Promise.resolve();
      }
      return new Promise<void>((resolve) =>
        fdatasyncWal.sync(fd, lone, (e) => {
          this.timeline.push(`fsynced:${h!.name}`);
          done(e);
          resolve();
        }),
      );
    };
    this.held.add(finish);
    h!.fire(finish);
  }

  /** The synchronous fsyncs (closing) so far. */
  syncsNow = 0;
  /** Set: the next synchronous fsync throws this instead of running (the disk's I/O error at close). */
  failNow: Error | null = null;
  /** The `lone` flag of every fsync asked for, in order. */
  readonly lones: boolean[] = [];

  syncNow(fd: number): void {
    const error = this.failNow;
    this.failNow = null;
    if (error) throw error;
    fdatasyncWal.syncNow(fd);
    this.syncsNow++;
  }
}

/** The writer's durable waits, each with the commit count it waits for and whether it has ended. */
export function watchDurableWaits(writer: GroupCommit): { commits: number; pending: boolean }[] {
  const waits: { commits: number; pending: boolean }[] = [];
  const whenDurable = writer.whenDurable.bind(writer);
  writer.whenDurable = () => {
    const w = { commits: writer.commits, pending: true };
    waits.push(w);
    const p = whenDurable();
    const end = () => {
      w.pending = false;
    };
    p.then(end, end);
    return p;
  };
  return waits;
}
