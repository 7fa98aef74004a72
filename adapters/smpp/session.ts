// One SMPP bind over one TCP (or TLS) connection at a time, after Cloudhopper's DefaultSmppSession: the
// bind state machine and what each PDU means, delegating the outstanding requests and submit slots to
// the window (window.ts) and the socket, framing, enquire_link and reconnect delay to the link (link.ts).
//
// States: idle → connecting → binding → bound → (unbinding) → disconnected → connecting … → stopped.

import type { CarrierHealth, Logger } from "../carrier.ts";
import { ReconnectPlan, SmppLink, type DownOptions } from "./link.ts";
import { Command, RESPONSE_BIT, type Pdu, type ShortMessageFields } from "./pdu.ts";
import { encodeBind, encodeHeaderOnly, encodeIdResponse, encodeShortMessage } from "./pdu-encode.ts";
import type { SmppSettings } from "./settings.ts";
import { SmppWindow, type Response } from "./window.ts";
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

const LINK_DOWN: PartOutcome = { kind: "link-down" };
const UNSENT: PartOutcome = { kind: "unsent" };
const TIMEOUT: PartOutcome = { kind: "timeout" };
const CANCELLED: PartOutcome = { kind: "cancelled" };
const BIND_COMMAND: Record<BindKind, number> = {
  transceiver: Command.bind_transceiver,
  transmitter: Command.bind_transmitter,
  receiver: Command.bind_receiver,
};

export class SmppSession {
  state: SessionState = "idle";
  readonly counters: SessionCounters = { connects: 0, binds: 0, drops: 0, submits: 0, timeouts: 0, framingErrors: 0, delivers: 0, maxInFlight: 0 };

  private link: SmppLink | undefined;
  private readonly window: SmppWindow;
  private readonly reconnect: ReconnectPlan;
  private alarm: string | undefined;
  private lastError = "not started";
  private stopping = false;
  private timers: {
    rebindWait?: ReturnType<typeof setTimeout>;
    reconnect?: ReturnType<typeof setTimeout>;
    sweep?: ReturnType<typeof setInterval>;
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
    this.window = new SmppWindow(settings.window, settings.response_timeout_ms, now, this.counters);
    this.reconnect = new ReconnectPlan(settings, now);
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
    return this.window.paused;
  }

  get outstanding(): number {
    return this.window.inFlight;
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
    const slot = this.window.acquire();
    if (slot !== true && !(await slot)) return UNSENT;
    // Slots are granted only while bound, but a part may have failed meanwhile.
    const link = this.link;
    if (!link || !link.alive || this.state !== "bound" || group.failed) {
      this.window.release();
      return group.failed ? CANCELLED : UNSENT;
    }
    this.counters.submits++;
    const outcome = await this.sendSubmit(link, sm);
    if (outcome.kind !== "ok") group.failed = true;
    this.window.release();
    return outcome;
  }

  private async sendSubmit(link: SmppLink, sm: ShortMessageFields): Promise<PartOutcome> {
    let r: Response;
    try {
      r = await this.request(link, (seq) => encodeShortMessage(Command.submit_sm, seq, sm));
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
    if (status === ESME_RTHROTTLED) {
      // The SMSC wants less: stop this bind's submits for a while (Kannel sleeps too).
      this.window.pause(this.settings.throttle_pause_ms);
      this.log.warn({ session: this.label, pauseMs: this.settings.throttle_pause_ms }, "smpp throttled by SMSC");
    }
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
    this.window.refuseWaiters();
    const link = this.link;
    if (!link || !link.alive) {
      this.state = "stopped";
      this.clearTimers();
      this.firstAttempt.settle();
      return;
    }
    if (this.state === "bound") {
      while (this.window.inFlight > 0 && link.alive && this.now() < deadlineAt) await sleep(Math.min(20, deadlineAt - this.now()));
      if (link.alive) {
        this.state = "unbinding";
        const wait = Math.max(0, Math.min(this.settings.unbind_timeout_ms, deadlineAt - this.now()));
        await Promise.race([this.request(link, (seq) => encodeHeaderOnly(Command.unbind, 0, seq)), sleep(wait)]);
      }
    }
    link.close("stopped", { graceful: true });
  }

  /** The link's state alone: health() without the text (the router asks it per claimed message). */
  linkState(): CarrierHealth["state"] {
    if (this.state === "stopped" || this.state === "idle") return "idle";
    if (this.alarm) return "alarm";
    return this.state === "bound" ? "up" : "down";
  }

  health(): CarrierHealth {
    const where = `${this.settings.host}:${this.settings.port}`;
    const state = this.linkState();
    switch (state) {
      case "idle":
        return { name: this.label, state, detail: this.state === "stopped" ? "stopped" : "not started" };
      case "alarm":
        return { name: this.label, state, detail: this.alarm! };
      case "up":
        return { name: this.label, state, detail: `bound as ${this.kind} to ${where}, ${this.window.inFlight}/${this.settings.window} in flight${this.paused ? ", throttled" : ""}` };
      default:
        return { name: this.label, state, detail: `${this.state} (${where}): ${this.lastError}` };
    }
  }

  // ---- the bind state machine ----------------------------------------------------------------

  private connect(): void {
    if (this.stopping) return;
    this.state = "connecting";
    this.counters.connects++;
    const link: SmppLink = new SmppLink(
      this.label,
      this.settings,
      {
        open: () => void this.bind(link),
        pdu: (pdu) => this.onPdu(link, pdu),
        written: (sequences) => this.window.markWritten(sequences),
        down: (reason, opts) => this.onDown(reason, opts),
      },
      this.counters,
      this.log,
    );
    this.link = link;
  }

  private async bind(link: SmppLink): Promise<void> {
    const s = this.settings;
    this.state = "binding";
    const sweepEvery = Math.min(1000, Math.max(10, Math.floor(s.response_timeout_ms / 10)));
    this.timers.sweep = setInterval(() => this.expireRequests(), sweepEvery);
    const commandId = BIND_COMMAND[this.kind];
    const r = await this.request(link, (seq) =>
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
    if (!link.alive || r === "link-down" || r === "unsent") return;
    if (r === "timeout") return link.close("bind response timed out");
    if (r.status !== 0 || r.commandId === Command.generic_nack) {
      const why = `bind refused: ${statusName(r.status)} (0x${r.status.toString(16).padStart(2, "0")})`;
      if (isBindConfigFailure(r.status)) {
        // Credentials or account: retrying fast cannot help and may lock the account.
        this.alarm = `${why}; check system_id/password; retrying every ${Math.round(s.bind_failure_retry_ms / 1000)} s`;
        this.log.error({ session: this.label, status: r.status, system_id: s.system_id }, this.alarm);
        return link.close(why, { retryInMs: s.bind_failure_retry_ms });
      }
      return link.close(why);
    }
    this.state = "bound";
    this.alarm = undefined;
    this.lastError = "";
    this.reconnect.bound();
    this.counters.binds++;
    this.log.info({ session: this.label, host: s.host, port: s.port, smsc: r.id }, "smpp bound");
    link.superviseWith(s.enquire_link_s * 1000, () =>
      this.state === "bound" ? this.request(link, (seq) => encodeHeaderOnly(Command.enquire_link, 0, seq)) : undefined,
    );
    clearTimeout(this.timers.rebindWait);
    this.timers.rebindWait = undefined;
    this.firstAttempt.settle();
    this.window.open();
  }

  /**
   * The link went down (once per link). Every request in flight is handed back by the window;
   * submits waiting for a slot wait on for the rebind.
   */
  private onDown(reason: string, opts: DownOptions): void {
    this.clearTimers();
    const handedBack = this.window.cancelAll();
    this.lastError = reason;
    this.counters.drops++;
    this.firstAttempt.settle();
    if (this.stopping) {
      this.state = "stopped";
      this.log.info({ session: this.label, handedBack }, "smpp session stopped");
      return;
    }
    this.state = "disconnected";
    const delay = this.reconnect.afterDrop(opts.retryInMs);
    // Waiting submits are not in doubt; from the first drop they get one response timeout for a
    // rebind, then go back to the dispatcher as unsent.
    this.timers.rebindWait ??= setTimeout(() => {
      this.timers.rebindWait = undefined;
      if (this.state !== "bound") this.window.refuseWaiters();
    }, this.settings.response_timeout_ms);
    this.log.warn({ session: this.label, reason, handedBack, retryInMs: Math.round(delay) }, "smpp link down");
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  private clearTimers(): void {
    clearInterval(this.timers.sweep);
    this.window.close();
  }

  private request(link: SmppLink, encode: (sequence: number) => Buffer): Promise<Response> {
    const sequence = this.window.nextSequence();
    const pdu = encode(sequence);
    const response = this.window.track(sequence);
    link.write(pdu, sequence);
    return response;
  }

  private expireRequests(): void {
    for (const sequence of this.window.expire()) this.log.warn({ session: this.label, sequence }, "smpp request timed out");
  }

  private onPdu(link: SmppLink, pdu: Pdu): void {
    if (pdu.commandId & RESPONSE_BIT) {
      if (!this.window.complete(pdu)) {
        this.log.warn({ session: this.label, commandId: pdu.commandId, sequence: pdu.sequence, status: pdu.status }, "smpp response to no outstanding request");
      }
      return;
    }
    switch (pdu.commandId) {
      case Command.enquire_link:
        link.write(encodeHeaderOnly(Command.enquire_link_resp, 0, pdu.sequence));
        return;
      case Command.deliver_sm:
        void this.onDeliver(link, pdu);
        return;
      case Command.unbind:
        link.write(encodeHeaderOnly(Command.unbind_resp, 0, pdu.sequence));
        link.close("unbind from SMSC", { graceful: true });
        return;
      default:
        link.write(encodeHeaderOnly(Command.generic_nack, ESME_RINVCMDID, pdu.sequence));
    }
  }

  /** deliver_sm_resp goes out only after the pipeline has the item; 0x64 makes the SMSC retry later. */
  private async onDeliver(link: SmppLink, pdu: Pdu): Promise<void> {
    this.counters.delivers++;
    let status = ESME_RX_T_APPN;
    try {
      status = await this.hooks.deliver(pdu.sm!);
    } catch (e) {
      this.log.error({ session: this.label, err: String(e) }, "smpp deliver_sm handling failed");
    }
    if (link.alive) link.write(encodeIdResponse(Command.deliver_sm_resp, status, pdu.sequence));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
