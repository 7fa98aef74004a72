// One SMPP bind over one TCP (or TLS) connection at a time, after Cloudhopper's session: a window of
// outstanding submits, a response deadline per request, enquire_link supervision, reconnect with
// backoff and jitter on a fresh socket, and every in-flight request handed back when the link drops.
//
// States: idle → connecting → binding → bound → (unbinding) → disconnected → connecting … → stopped.

import net from "node:net";
import tls from "node:tls";
import type { CarrierHealth, Logger } from "../carrier.ts";
import {
  Command,
  decodePdu,
  encodeBind,
  encodeHeaderOnly,
  encodeIdResponse,
  encodeShortMessage,
  FrameReader,
  RESPONSE_BIT,
  SmppFramingError,
  type Pdu,
  type ShortMessageFields,
} from "./pdu.ts";
import type { SmppSettings } from "./settings.ts";
import { ESME_RINVCMDID, ESME_RINVMSGLEN, ESME_RSYSERR, ESME_RTHROTTLED, ESME_RX_T_APPN, isBindConfigFailure, statusName } from "./status.ts";


export type BindKind = "transceiver" | "transmitter" | "receiver";
export type SessionState = "idle" | "connecting" | "binding" | "bound" | "unbinding" | "disconnected" | "stopped";

/** What became of one submit_sm. */
export type PartOutcome =
  | { kind: "ok"; messageId: string }
  /** submit_sm_resp or generic_nack with this command_status. */
  | { kind: "refused"; status: number }
  /** No response in time: the SMSC may or may not have taken it. */
  | { kind: "timeout" }
  /** Written to the socket, and the link dropped before the answer: the SMSC may have it. */
  | { kind: "link-down" }
  /** Never written: no bound link, or the carrier stopped while it waited for a window slot. */
  | { kind: "unsent" }
  /** Not sent because the caller no longer wanted it (another part of its message failed). */
  | { kind: "cancelled" };

/** The parts of one message: once one fails, the rest are not sent. */
export interface PartGroup {
  failed: boolean;
}

export interface SessionHooks {
  /** A deliver_sm arrived; resolves with the command_status to answer in deliver_sm_resp. */
  deliver(sm: ShortMessageFields): Promise<number>;
}

export interface SessionCounters {
  connects: number;
  binds: number;
  drops: number;
  submits: number;
  timeouts: number;
  framingErrors: number;
  delivers: number;
  /** Highest number of submit_sm outstanding at once, for checking the window holds. */
  maxInFlight: number;
}

interface Connection {
  socket: net.Socket;
  reader: FrameReader;
  alive: boolean;
  /** PDUs queued in this turn of the event loop, sent as one write. */
  out: Buffer[];
  /** Sequence numbers of the requests among `out`, marked written when it is flushed. */
  outRequests: number[];
  flushScheduled: boolean;
}

/** "unsent": the link went before the request was handed to the socket. */
type Response = Pdu | "timeout" | "link-down" | "unsent";

interface PendingRequest {
  deadline: number;
  /** Handed to the socket: from here on the peer may have it. */
  written: boolean;
  resolve: (r: Response) => void;
}

const LINK_DOWN: PartOutcome = { kind: "link-down" };
const UNSENT: PartOutcome = { kind: "unsent" };
const TIMEOUT: PartOutcome = { kind: "timeout" };
const CANCELLED: PartOutcome = { kind: "cancelled" };
/** A bind that lived this long counts as stable: the next drop starts the backoff from the minimum. */
const STABLE_BIND_MS = 60_000;
const BIND_COMMAND: Record<BindKind, number> = {
  transceiver: Command.bind_transceiver,
  transmitter: Command.bind_transmitter,
  receiver: Command.bind_receiver,
};

export class SmppSession {
  state: SessionState = "idle";
  readonly counters: SessionCounters = { connects: 0, binds: 0, drops: 0, submits: 0, timeouts: 0, framingErrors: 0, delivers: 0, maxInFlight: 0 };

  private conn: Connection | undefined;
  private readonly pending = new Map<number, PendingRequest>();
  private sequence = 0;
  private inFlight = 0;
  private readonly slotWaiters: ((granted: boolean) => void)[] = [];
  private pausedUntil = 0;
  private attempts = 0;
  private boundAt = 0;
  private alarm: string | undefined;
  private lastError = "not started";
  private stopping = false;
  private enquireOutstanding = false;
  private timers: {
    connect?: ReturnType<typeof setTimeout>;
    rebindWait?: ReturnType<typeof setTimeout>;
    reconnect?: ReturnType<typeof setTimeout>;
    pause?: ReturnType<typeof setTimeout>;
    sweep?: ReturnType<typeof setInterval>;
    enquire?: ReturnType<typeof setInterval>;
  } = {};
  private firstAttempt: { promise: Promise<void>; settle: () => void };

  constructor(
    readonly label: string,
    readonly kind: BindKind,
    private readonly settings: SmppSettings,
    private readonly hooks: SessionHooks,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    let settle!: () => void;
    const promise = new Promise<void>((r) => (settle = r));
    this.firstAttempt = { promise, settle };
  }

  /** Starts connecting; resolves once the first bind attempt has succeeded or failed (never rejects). */
  start(): Promise<void> {
    if (this.state === "idle") this.connect();
    return this.firstAttempt.promise;
  }

  get canSubmit(): boolean {
    return this.state === "bound" && this.kind !== "receiver" && !this.stopping;
  }

  get paused(): boolean {
    return this.pausedUntil > this.now();
  }

  get outstanding(): number {
    return this.inFlight;
  }

  /** Why the link last went down (or never came up), without the retry plan health() adds. */
  get lastFailure(): string {
    return this.lastError;
  }

  /**
   * Sends one submit_sm once the window has room and no throttle pause is on. A submit waiting for a
   * slot keeps its place when the link drops and goes out after the rebind; it comes back "unsent"
   * only on stop or when no rebind came within response_timeout_ms. The parts of one message share
   * a `group`: a part that fails marks it before its window slot is released, so a later part
   * waiting for that very slot sees the mark and is not sent.
   */
  async submit(sm: ShortMessageFields, group: PartGroup = { failed: false }): Promise<PartOutcome> {
    if (!this.canSubmit) return UNSENT;
    if (!this.takeSlot()) {
      const granted = await new Promise<boolean>((resolve) => {
        this.slotWaiters.push(resolve);
        this.pumpSlots();
      });
      if (!granted) return UNSENT;
    }
    // Slots are granted only while bound, but a part may have failed meanwhile.
    const conn = this.conn;
    if (!conn || !conn.alive || this.state !== "bound" || group.failed) {
      this.releaseSlot();
      return group.failed ? CANCELLED : UNSENT;
    }
    this.counters.submits++;
    const outcome = await this.sendSubmit(conn, sm);
    if (outcome.kind !== "ok") group.failed = true;
    this.releaseSlot();
    return outcome;
  }

  private async sendSubmit(conn: Connection, sm: ShortMessageFields): Promise<PartOutcome> {
    let r: Response;
    try {
      r = await this.request(conn, (seq) => encodeShortMessage(Command.submit_sm, seq, sm));
    } catch (e) {
      // Only a field the codec refuses (a bug upstream of us): never sent, never sendable.
      this.log.error({ session: this.label, err: String(e) }, "smpp submit_sm could not be encoded");
      return { kind: "refused", status: ESME_RINVMSGLEN };
    }
    if (r === "timeout") return TIMEOUT;
    if (r === "link-down") return LINK_DOWN;
    if (r === "unsent") return UNSENT;
    // A generic_nack without a status is a broken SMSC; call it a system error (retried later).
    const status = r.commandId === Command.generic_nack ? r.status || ESME_RSYSERR : r.status;
    if (status === 0) return { kind: "ok", messageId: r.id ?? "" };
    if (status === ESME_RTHROTTLED) this.pause();
    return { kind: "refused", status };
  }

  /**
   * Graceful stop by `deadlineAt` (Unix ms): no new submits, in-flight ones get until the deadline,
   * then unbind (bounded by unbind_timeout_ms) and close. Whatever is still outstanding is handed
   * back as link-down (in doubt), and submits still waiting for a slot as unsent.
   */
  async stop(deadlineAt: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.rebindWait);
    for (const w of this.slotWaiters.splice(0)) w(false);
    const conn = this.conn;
    if (!conn || !conn.alive) {
      this.state = "stopped";
      this.clearTimers();
      this.firstAttempt.settle();
      return;
    }
    if (this.state === "bound") {
      while (this.inFlight > 0 && conn.alive && this.now() < deadlineAt) await sleep(Math.min(20, deadlineAt - this.now()));
      if (conn.alive) {
        this.state = "unbinding";
        const wait = Math.max(0, Math.min(this.settings.unbind_timeout_ms, deadlineAt - this.now()));
        await Promise.race([this.request(conn, (seq) => encodeHeaderOnly(Command.unbind, 0, seq)), sleep(wait)]);
      }
    }
    this.drop(conn, "stopped", { graceful: true });
  }

  health(): CarrierHealth {
    const where = `${this.settings.host}:${this.settings.port}`;
    if (this.state === "stopped") return { name: this.label, state: "idle", detail: "stopped" };
    if (this.alarm) return { name: this.label, state: "alarm", detail: this.alarm };
    switch (this.state) {
      case "bound":
        return {
          name: this.label,
          state: "up",
          detail: `bound as ${this.kind} to ${where}, ${this.inFlight}/${this.settings.window} in flight${this.paused ? ", throttled" : ""}`,
        };
      case "idle":
        return { name: this.label, state: "idle", detail: "not started" };
      default:
        return { name: this.label, state: "down", detail: `${this.state} (${where}): ${this.lastError}` };
    }
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  private connect(): void {
    if (this.stopping) return;
    const s = this.settings;
    this.state = "connecting";
    this.counters.connects++;
    // A new socket every time: node-smpp's reuse of a socket after a drop never reads again.
    const socket = s.tls
      ? tls.connect({ host: s.host, port: s.port, rejectUnauthorized: s.tls_verify, servername: net.isIP(s.host) ? undefined : s.host })
      : net.connect({ host: s.host, port: s.port });
    const conn: Connection = { socket, reader: new FrameReader(s.max_pdu_bytes), alive: true, out: [], outRequests: [], flushScheduled: false };
    this.conn = conn;
    // Without it, small PDUs wait for the peer's delayed ACK (the ~40 ms Kannel stall).
    socket.setNoDelay(true);
    this.timers.connect = setTimeout(() => this.drop(conn, `connect timed out after ${s.connect_timeout_ms} ms`), s.connect_timeout_ms);
    socket.once(s.tls ? "secureConnect" : "connect", () => {
      clearTimeout(this.timers.connect);
      void this.bind(conn);
    });
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    socket.on("error", (e: Error) => this.drop(conn, `socket error: ${e.message}`));
    socket.on("close", () => this.drop(conn, "connection closed by peer"));
  }

  private async bind(conn: Connection): Promise<void> {
    const s = this.settings;
    this.state = "binding";
    const sweepEvery = Math.min(1000, Math.max(10, Math.floor(s.response_timeout_ms / 10)));
    this.timers.sweep = setInterval(() => this.expireRequests(), sweepEvery);
    const commandId = BIND_COMMAND[this.kind];
    const r = await this.request(conn, (seq) =>
      encodeBind(commandId, seq, {
        systemId: s.system_id,
        password: s.password,
        systemType: s.system_type,
        interfaceVersion: s.interface_version,
        addrTon: 0,
        addrNpi: 0,
        addressRange: "",
      }),
    );
    if (!conn.alive || r === "link-down" || r === "unsent") return;
    if (r === "timeout") return this.drop(conn, "bind response timed out");
    if (r.status !== 0 || r.commandId === Command.generic_nack) {
      const why = `bind refused: ${statusName(r.status)} (0x${r.status.toString(16).padStart(2, "0")})`;
      if (isBindConfigFailure(r.status)) {
        // Credentials or account: retrying fast cannot help and may lock the account.
        this.alarm = `${why}; check system_id/password; retrying every ${Math.round(s.bind_failure_retry_ms / 1000)} s`;
        this.log.error({ session: this.label, status: r.status, system_id: s.system_id }, this.alarm);
        return this.drop(conn, why, { retryInMs: s.bind_failure_retry_ms });
      }
      return this.drop(conn, why);
    }
    this.state = "bound";
    this.alarm = undefined;
    this.lastError = "";
    this.boundAt = this.now();
    this.counters.binds++;
    this.log.info({ session: this.label, host: s.host, port: s.port, smsc: r.id }, "smpp bound");
    this.timers.enquire = setInterval(() => void this.enquireLink(conn), s.enquire_link_s * 1000);
    clearTimeout(this.timers.rebindWait);
    this.timers.rebindWait = undefined;
    this.firstAttempt.settle();
    this.pumpSlots();
  }

  /**
   * Tears the connection down once; later calls for the same connection do nothing. Every request
   * in flight learns "link-down" if it was written (Cloudhopper's unacknowledged PDUs on
   * disconnect), else "unsent". Submits waiting for a slot wait on for the rebind.
   */
  private drop(conn: Connection, reason: string, opts: { retryInMs?: number; graceful?: boolean } = {}): void {
    if (!conn.alive) return;
    conn.alive = false;
    if (opts.graceful) {
      this.flush(conn);
      conn.socket.end();
      setTimeout(() => conn.socket.destroy(), 1000).unref?.();
    } else conn.socket.destroy();
    this.clearTimers();
    this.enquireOutstanding = false;
    const handedBack = [...this.pending.values()];
    this.pending.clear();
    for (const p of handedBack) p.resolve(p.written ? "link-down" : "unsent");
    this.lastError = reason;
    this.counters.drops++;
    this.firstAttempt.settle();
    if (this.stopping) {
      this.state = "stopped";
      this.log.info({ session: this.label, handedBack: handedBack.length }, "smpp session stopped");
      return;
    }
    this.state = "disconnected";
    if (this.boundAt && this.now() - this.boundAt >= STABLE_BIND_MS) this.attempts = 0;
    this.boundAt = 0;
    const delay = opts.retryInMs ?? this.backoff();
    // Waiting submits are not in doubt; from the first drop they get one response timeout for a
    // rebind, then go back to the dispatcher as unsent.
    this.timers.rebindWait ??= setTimeout(() => {
      this.timers.rebindWait = undefined;
      if (this.state !== "bound") for (const w of this.slotWaiters.splice(0)) w(false);
    }, this.settings.response_timeout_ms);
    this.log.warn({ session: this.label, reason, handedBack: handedBack.length, retryInMs: Math.round(delay) }, "smpp link down");
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  /** Exponential, capped, with jitter over the upper half so a fleet of binds does not reconnect in step. */
  private backoff(): number {
    const s = this.settings;
    const base = Math.min(s.reconnect_max_ms, s.reconnect_min_ms * 2 ** this.attempts);
    this.attempts = Math.min(this.attempts + 1, 30);
    return base / 2 + (Math.random() * base) / 2;
  }

  private clearTimers(): void {
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.sweep);
    clearInterval(this.timers.enquire);
    clearTimeout(this.timers.pause);
    this.timers.pause = undefined;
  }

  private async enquireLink(conn: Connection): Promise<void> {
    if (!conn.alive || this.state !== "bound" || this.enquireOutstanding) return;
    this.enquireOutstanding = true;
    const r = await this.request(conn, (seq) => encodeHeaderOnly(Command.enquire_link, 0, seq));
    this.enquireOutstanding = false;
    if (r === "timeout") this.drop(conn, "enquire_link not answered");
  }

  // ---- requests and the window ---------------------------------------------------------------

  private nextSequence(): number {
    // 1..0x7FFFFFFF, skipping numbers still outstanding after a wrap.
    do this.sequence = this.sequence >= 0x7fffffff ? 1 : this.sequence + 1;
    while (this.pending.has(this.sequence));
    return this.sequence;
  }

  private request(conn: Connection, encode: (sequence: number) => Buffer): Promise<Response> {
    const sequence = this.nextSequence();
    const pdu = encode(sequence);
    return new Promise<Response>((resolve) => {
      this.pending.set(sequence, { deadline: this.now() + this.settings.response_timeout_ms, written: false, resolve });
      this.write(conn, pdu, sequence);
    });
  }

  /** All requests share one timeout, so the Map's insertion order is deadline order: stop at the first live one. */
  private expireRequests(): void {
    const t = this.now();
    for (const [sequence, p] of this.pending) {
      if (p.deadline > t) break;
      this.pending.delete(sequence);
      this.counters.timeouts++;
      this.log.warn({ session: this.label, sequence }, "smpp request timed out");
      p.resolve("timeout");
    }
  }

  private takeSlot(): boolean {
    if (this.slotWaiters.length > 0 || this.inFlight >= this.settings.window || this.paused) return false;
    this.grantSlot();
    return true;
  }

  private grantSlot(): void {
    this.inFlight++;
    if (this.inFlight > this.counters.maxInFlight) this.counters.maxInFlight = this.inFlight;
  }

  private releaseSlot(): void {
    this.inFlight--;
    this.pumpSlots();
  }

  private pumpSlots(): void {
    if (this.state !== "bound" || this.slotWaiters.length === 0) return;
    const wait = this.pausedUntil - this.now();
    if (wait > 0) {
      this.timers.pause ??= setTimeout(() => {
        this.timers.pause = undefined;
        this.pumpSlots();
      }, wait);
      return;
    }
    while (this.slotWaiters.length > 0 && this.inFlight < this.settings.window) {
      this.grantSlot();
      this.slotWaiters.shift()!(true);
    }
  }

  /** ESME_RTHROTTLED: the SMSC wants less; stop this bind's submits for a while (Kannel sleeps too). */
  private pause(): void {
    this.pausedUntil = this.now() + this.settings.throttle_pause_ms;
    this.log.warn({ session: this.label, pauseMs: this.settings.throttle_pause_ms }, "smpp throttled by SMSC");
  }

  // ---- the wire ------------------------------------------------------------------------------

  /** Queues a PDU; everything queued in this turn goes out in one write (one syscall, one TCP segment when small). */
  private write(conn: Connection, pdu: Buffer, requestSequence?: number): void {
    conn.out.push(pdu);
    if (requestSequence !== undefined) conn.outRequests.push(requestSequence);
    if (conn.flushScheduled) return;
    conn.flushScheduled = true;
    setImmediate(() => this.flush(conn));
  }

  private flush(conn: Connection): void {
    conn.flushScheduled = false;
    if (conn.out.length === 0 || conn.socket.destroyed) return;
    const out = conn.out;
    conn.out = [];
    for (const sequence of conn.outRequests.splice(0)) {
      const p = this.pending.get(sequence);
      if (p) p.written = true;
    }
    conn.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (!conn.alive) return;
    try {
      conn.reader.feed(chunk, (frame) => this.onFrame(conn, frame));
    } catch (e) {
      if (!(e instanceof SmppFramingError)) {
        this.log.error({ session: this.label, err: String(e) }, "smpp: unexpected error handling a PDU");
        return this.drop(conn, `internal error: ${String(e)}`);
      }
      // The stream cannot be resynchronised: say why, then start over on a new connection.
      this.counters.framingErrors++;
      this.log.warn({ session: this.label, err: e.message }, "smpp framing error; reconnecting");
      conn.out.push(encodeHeaderOnly(Command.generic_nack, e.nackStatus, e.sequence));
      this.drop(conn, `framing error: ${e.message}`, { graceful: true });
    }
  }

  private onFrame(conn: Connection, frame: Buffer): void {
    if (!conn.alive) return;
    let pdu: Pdu;
    try {
      pdu = decodePdu(frame);
    } catch (e) {
      if (e instanceof SmppFramingError && !e.fatal) {
        // The frame was delimited correctly, only its body is bad: refuse it and keep the session.
        this.counters.framingErrors++;
        this.log.warn({ session: this.label, err: e.message, sequence: e.sequence }, "smpp malformed PDU");
        this.write(conn, encodeHeaderOnly(Command.generic_nack, e.nackStatus, e.sequence));
        return;
      }
      throw e;
    }
    if (pdu.commandId & RESPONSE_BIT) {
      const p = this.pending.get(pdu.sequence);
      if (p) {
        this.pending.delete(pdu.sequence);
        p.resolve(pdu);
      } else {
        this.log.warn({ session: this.label, commandId: pdu.commandId, sequence: pdu.sequence, status: pdu.status }, "smpp response to no outstanding request");
      }
      return;
    }
    switch (pdu.commandId) {
      case Command.enquire_link:
        this.write(conn, encodeHeaderOnly(Command.enquire_link_resp, 0, pdu.sequence));
        return;
      case Command.deliver_sm:
        void this.onDeliver(conn, pdu);
        return;
      case Command.unbind:
        this.write(conn, encodeHeaderOnly(Command.unbind_resp, 0, pdu.sequence));
        this.drop(conn, "unbind from SMSC", { graceful: true });
        return;
      default:
        this.write(conn, encodeHeaderOnly(Command.generic_nack, ESME_RINVCMDID, pdu.sequence));
    }
  }

  /** deliver_sm_resp goes out only after the pipeline has the item; 0x64 makes the SMSC retry later. */
  private async onDeliver(conn: Connection, pdu: Pdu): Promise<void> {
    this.counters.delivers++;
    let status = ESME_RX_T_APPN;
    try {
      status = await this.hooks.deliver(pdu.sm!);
    } catch (e) {
      this.log.error({ session: this.label, err: String(e) }, "smpp deliver_sm handling failed");
    }
    if (conn.alive) this.write(conn, encodeIdResponse(Command.deliver_sm_resp, status, pdu.sequence));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
