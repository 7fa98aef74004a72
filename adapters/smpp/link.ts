// One SMPP connection (TCP or TLS) and what keeps a bind's connections going: framing the byte stream,
// batching writes, enquire_link supervision, and the reconnect delay. What the PDUs mean is the
// session's business; the link only moves them.

import net from "node:net";
import tls from "node:tls";
import type { Logger } from "../carrier.ts";
import { jitteredBackoffMs } from "../shared/backoff.ts";
import { Command, type Pdu } from "./pdu.ts";
import { decodePdu, FrameReader, SmppFramingError } from "./pdu-decode.ts";
import { encodeHeaderOnly } from "./pdu-encode.ts";
import type { SmppSettings } from "./settings.ts";

export interface DownOptions {
  /** Reconnect after this long instead of the backoff. */
  retryInMs?: number;
  /** Send what is queued and end the stream instead of cutting it. */
  graceful?: boolean;
}

export interface LinkEvents {
  /** Connected (after the TLS handshake when there is one): time to bind. */
  open(): void;
  /** A well-formed PDU arrived. */
  pdu(pdu: Pdu): void;
  /** Requests among these sequence numbers were handed to the socket. */
  written(sequences: number[]): void;
  /** The link went down; called once, synchronously from close(). */
  down(reason: string, opts: DownOptions): void;
}

export class SmppLink {
  alive = true;
  private readonly socket: net.Socket;
  private readonly reader: FrameReader;
  /** PDUs queued in this turn of the event loop, sent as one write. */
  private out: Buffer[] = [];
  /** Sequence numbers of the requests among `out`. */
  private outRequests: number[] = [];
  private flushScheduled = false;
  private readonly connectTimer: ReturnType<typeof setTimeout>;
  private enquireTimer: ReturnType<typeof setInterval> | undefined;
  private enquireOutstanding = false;

  constructor(
    private readonly label: string,
    s: SmppSettings,
    private readonly events: LinkEvents,
    private readonly counters: { framingErrors: number },
    private readonly log: Logger,
  ) {
    // A new socket every time: node-smpp's reuse of a socket after a drop never reads again.
    const socket = s.tls
      ? tls.connect({ host: s.host, port: s.port, rejectUnauthorized: s.tls_verify, servername: net.isIP(s.host) ? undefined : s.host })
      : net.connect({ host: s.host, port: s.port });
    this.socket = socket;
    this.reader = new FrameReader(s.max_pdu_bytes);
    // Without it, small PDUs wait for the peer's delayed ACK (the ~40 ms Kannel stall).
    socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => this.close(`connect timed out after ${s.connect_timeout_ms} ms`), s.connect_timeout_ms);
    socket.once(s.tls ? "secureConnect" : "connect", () => {
      clearTimeout(this.connectTimer);
      this.events.open();
    });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e: Error) => this.close(`socket error: ${e.message}`));
    socket.on("close", () => this.close("connection closed by peer"));
  }

  /** Queues a PDU; everything queued in this turn goes out in one write (one syscall, one TCP segment when small). */
  write(pdu: Buffer, requestSequence?: number): void {
    this.out.push(pdu);
    if (requestSequence !== undefined) this.outRequests.push(requestSequence);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Sends enquire_link through `ask` every `everyMs` while none is outstanding (`ask` returns undefined
   * when this is no time to ask); one that times out takes the link down.
   */
  superviseWith(everyMs: number, ask: () => Promise<Pdu | string> | undefined): void {
    this.enquireTimer = setInterval(async () => {
      if (!this.alive || this.enquireOutstanding) return;
      const asked = ask();
      if (!asked) return;
      this.enquireOutstanding = true;
      const r = await asked;
      this.enquireOutstanding = false;
      if (r === "timeout") this.close("enquire_link not answered");
    }, everyMs);
  }

  /** Tears the connection down once; later calls do nothing. */
  close(reason: string, opts: DownOptions = {}): void {
    if (!this.alive) return;
    this.alive = false;
    if (opts.graceful) {
      this.flush();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref?.();
    } else this.socket.destroy();
    clearTimeout(this.connectTimer);
    clearInterval(this.enquireTimer);
    this.events.down(reason, opts);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const out = this.out;
    this.out = [];
    this.events.written(this.outRequests.splice(0));
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private onData(chunk: Buffer): void {
    if (!this.alive) return;
    try {
      this.reader.feed(chunk, (frame) => this.onFrame(frame));
    } catch (e) {
      if (!(e instanceof SmppFramingError)) {
        this.log.error({ session: this.label, err: String(e) }, "smpp: unexpected error handling a PDU");
        return this.close(`internal error: ${String(e)}`);
      }
      // The stream cannot be resynchronised: say why, then start over on a new connection.
      this.counters.framingErrors++;
      this.log.warn({ session: this.label, err: e.message }, "smpp framing error; reconnecting");
      this.out.push(encodeHeaderOnly(Command.generic_nack, e.nackStatus, e.sequence));
      this.close(`framing error: ${e.message}`, { graceful: true });
    }
  }

  private onFrame(frame: Buffer): void {
    if (!this.alive) return;
    let pdu: Pdu;
    try {
      pdu = decodePdu(frame);
    } catch (e) {
      if (e instanceof SmppFramingError && !e.fatal) {
        // The frame was delimited correctly, only its body is bad: refuse it and keep the session.
        this.counters.framingErrors++;
        this.log.warn({ session: this.label, err: e.message, sequence: e.sequence }, "smpp malformed PDU");
        this.write(encodeHeaderOnly(Command.generic_nack, e.nackStatus, e.sequence));
        return;
      }
      throw e;
    }
    this.events.pdu(pdu);
  }
}

/** A bind that lived this long counts as stable: the next drop starts the backoff from the minimum. */
const STABLE_BIND_MS = 60_000;

/** How long to wait before the next connect: jittered exponential backoff, reset by a stable bind. */
export class ReconnectPlan {
  private attempts = 0;
  private boundAt = 0;

  constructor(
    private readonly settings: Pick<SmppSettings, "reconnect_min_ms" | "reconnect_max_ms">,
    private readonly now: () => number,
  ) {}

  bound(): void {
    this.boundAt = this.now();
  }

  /** The delay after a drop (`retryInMs` when the caller knows better); the jitter keeps a fleet of binds from reconnecting in step. */
  afterDrop(retryInMs?: number): number {
    if (this.boundAt && this.now() - this.boundAt >= STABLE_BIND_MS) this.attempts = 0;
    this.boundAt = 0;
    if (retryInMs !== undefined) return retryInMs;
    this.attempts = Math.min(this.attempts + 1, 30);
    return jitteredBackoffMs(this.attempts, this.settings.reconnect_min_ms, this.settings.reconnect_max_ms, Math.random);
  }
}
