// A media body kept in memory while small and spilled to a file under the data directory once large, with
// its hash taken as it streams: a campaign's 10 MB source never sits whole on the heap (libvips and ffmpeg
// read the file; the bytes are a read-only map of it that the kernel pages in only if something reads them).
import { closeSync, mkdirSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface Spooled {
  bytes: Uint8Array;
  /** The file holding the bytes when they were spilled; removed once nothing holds the bytes. */
  path?: string;
  sha256: string;
}

// A spilled file lives as long as its mapped bytes: whoever still holds them (the cache, a message being
// adapted) may still hand the path to libvips or ffmpeg.
const removeWhenUnreachable = new FinalizationRegistry<string>((path) => {
  try {
    unlinkSync(path);
  } catch {
    // Already gone (the directory cleared at start).
  }
});

/** Empties `dir`: spilled files of a process that stopped are nobody's. */
export function clearSpoolDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export class Spool {
  private chunks: Uint8Array[] = [];
  private held = 0;
  private fd: number | null = null;
  private path: string | null = null;
  private readonly hasher = new Bun.CryptoHasher("sha256");

  constructor(
    /** Where spilled files go; null = never spill. */
    private readonly dir: string | null,
    private readonly spillAboveBytes: number,
  ) {}

  write(chunk: Uint8Array): void {
    this.hasher.update(chunk);
    if (this.fd === null && this.dir !== null && this.held + chunk.byteLength > this.spillAboveBytes) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.path = join(this.dir, `${crypto.randomUUID()}.media`);
      this.fd = openSync(this.path, "w", 0o600);
      for (const held of this.chunks) this.append(held);
      this.chunks = [];
      this.held = 0;
    }
    if (this.fd !== null) this.append(chunk);
    else {
      this.chunks.push(chunk);
      this.held += chunk.byteLength;
    }
  }

  finish(): Spooled {
    const sha256 = this.hasher.digest("hex");
    if (this.fd === null || this.path === null) {
      return { bytes: Buffer.concat(this.chunks, this.held), sha256 };
    }
    closeSync(this.fd);
    this.fd = null;
    const bytes = Bun.mmap(this.path, { shared: false });
    removeWhenUnreachable.register(bytes, this.path);
    return { bytes, path: this.path, sha256 };
  }

  /** After a failed download: nothing kept. */
  discard(): void {
    if (this.fd !== null) closeSync(this.fd);
    if (this.path) rmSync(this.path, { force: true });
    this.fd = null;
    this.chunks = [];
  }

  private append(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.byteLength; ) at += writeSync(this.fd!, chunk, at);
  }
}
