// Group commit for a client-server database: the calls made in one turn of the event loop go to the
// server together, as one statement or transaction, so a busy node pays one round trip and one WAL
// flush per group instead of one per call. A few groups may be in flight at once (each on its own pooled
// connection); what arrives meanwhile waits for the next group, which is how groups grow under load.
// Written here rather than taken from a library: it is a queue and a counter, and the failure rule
// (who is told what when a group fails) is the caller's.

/** One call waiting in a group: the caller settles it (`run` below); anything left is failed with the group. */
export interface Waiting<I, O> {
  item: I;
  resolve(o: O): void;
  reject(e: unknown): void;
}

export class Groups<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly run: (group: Waiting<I, O>[]) => Promise<void>,
    private readonly maxInFlight: number,
    private readonly maxSize: number,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    // setImmediate, not a timer: a lone caller waits for nothing (a 1 ms timer would cap it near 700/s).
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.waiting.splice(0, this.maxSize);
    this.inFlight++;
    this.run(group)
      .catch((e) => {
        for (const w of group) w.reject(e); // settling twice is a no-op: only the unsettled hear it
      })
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
    this.schedule();
  }
}
