// An SMSC simulator for tests and benchmarks, built on the npm `smpp` package's server so that it
// shares no code with our ESME. Real TCP on 127.0.0.1. It records every submit_sm with its raw
// short_message octets, answers (or, by scenario, throttles, stalls, drops, refuses binds), sends
// receipts in the variants SMSCs use, and injects MO, raw garbage and link drops on demand.

import smpp from "smpp";
import type { Socket } from "node:net";

// node-smpp decodes short_message through its own (lossy) tables; keep the raw octets beside the
// result so tests can compare bytes exactly. Additive and idempotent; affects only node-smpp users.
const messageFilter = smpp.commands.submit_sm.params.short_message.filter;
if (!messageFilter.__rawKept) {
  const decode = messageFilter.decode;
  messageFilter.decode = function (this: unknown, value: unknown, skipUdh: unknown) {
    const result = decode.call(this, value, skipUdh);
    if (Buffer.isBuffer(value) && result && typeof result === "object") result.raw = Buffer.from(value);
    return result;
  };
  messageFilter.__rawKept = true;
}

/** How message ids look: in submit_sm_resp, and in receipts. */
export type IdBase = "dec" | "hex" | "resp_hex_receipt_dec" | "resp_dec_receipt_hex";
export type ReceiptFormat = "tlv" | "text" | "tlv+text" | "odd-text";

export interface SmscOptions {
  /** Credentials the SMSC accepts; unset = any. Wrong password → 0x0E, wrong system_id → 0x0F. */
  systemId?: string;
  password?: string;
  /** Refuse every bind with this status, or the binds of one kind (by command name, e.g. "bind_transmitter"). */
  bindStatus?: number | ((command: string) => number);
  /** Answer submits after this delay (to fill windows). */
  respondDelayMs?: number;
  /** Never answer submit_sm. */
  neverAnswer?: boolean;
  /** Never answer enquire_link. */
  ignoreEnquireLink?: boolean;
  /** Every n-th submit_sm (1-based, counted over the simulator) gets ESME_RTHROTTLED. */
  throttleEvery?: number;
  /** Status for a submit, by its 1-based number; undefined/0 = accept. */
  submitStatus?: (n: number, s: SubmitRecord) => number | undefined;
  /** When the n-th submit arrives, close every connection without answering it. Once. */
  dropAfter?: number;
  sendReceipts?: boolean;
  receiptDelayMs?: number;
  receiptFormat?: ReceiptFormat;
  receiptStat?: string;
  /** Send the receipt before the submit_sm_resp (the race Kannel loses on split binds). */
  receiptBeforeResp?: boolean;
  idBase?: IdBase;
  /** Left-pad receipt ids with zeros to this length. */
  receiptIdPad?: number;
  /** Left-pad submit_sm_resp ids with zeros to this length. */
  respIdPad?: number;
  /** Keep SubmitRecords (off for benchmarks). */
  record?: boolean;
  /** First message id number. */
  firstId?: number;
  /** The id number for the n-th submit (1-based), instead of counting up from firstId. */
  idNumber?: (n: number) => number;
  tls?: { key: string; cert: string };
  /** Listen on this port (to come back where a gateway expects it after stop()); default: any free one. */
  port?: number;
}

export interface SubmitRecord {
  n: number;
  connection: number;
  sequence: number;
  sourceAddr: string;
  sourceTon: number;
  sourceNpi: number;
  destAddr: string;
  destTon: number;
  destNpi: number;
  esmClass: number;
  dataCoding: number;
  registeredDelivery: number;
  validityPeriod: string;
  /** short_message exactly as sent (UDH included). */
  raw: Buffer;
  /** The UDH (with its length octet) when esm_class has UDHI, else empty. */
  udh: Buffer;
  /** The octets after the UDH. */
  body: Buffer;
  sar?: { ref: number; total: number; seq: number };
  messagePayload?: Buffer;
  respId?: string;
  receiptId?: string;
}

export interface BindRecord {
  connection: number;
  command: string;
  systemId: string;
  password: string;
  status: number;
}

export interface MoOptions {
  from: string;
  to: string;
  dataCoding: number;
  shortMessage: Buffer;
  esmClass?: number;
  sar?: { ref: number; total: number; seq: number };
  messagePayload?: Buffer;
}

export interface ReceiptOptions {
  id: string;
  stat?: string;
  format?: ReceiptFormat;
  /** Override the whole short_message text. */
  text?: string;
  messageState?: number;
  esmClass?: number;
  /** source_addr: the handset the message went to. */
  from?: string;
}

export interface Smsc {
  port: number;
  submits: SubmitRecord[];
  binds: BindRecord[];
  /** generic_nack PDUs the ESME sent us, with their status. */
  nacks: number[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Sessions currently open. */
  readonly openSessions: number;
  /** Sessions bound now, and the most bound at once so far (an SMSC's bind limit per system_id). */
  readonly boundNow: number;
  readonly maxBound: number;
  /** Connection numbers of the sessions bound now. */
  boundConnections(): number[];
  /** Highest count of unanswered submit_sm on one connection. */
  readonly maxOutstanding: number;
  readonly submitCount: number;
  /** Raw PDU the given connection numbers have received as enquire_link. */
  readonly enquireLinks: number;
  /** unbind PDUs received from the ESME. */
  readonly unbinds: number;
  sendMo(m: MoOptions): Promise<number>;
  /** A receipt on the next RX/TRX session in turn, or on connection `on` when given. */
  sendReceipt(r: ReceiptOptions, on?: number): Promise<number>;
  /** Writes octets as they are to every open connection. */
  sendRaw(bytes: Buffer): void;
  /** Sends unbind on every bound session. */
  unbindAll(): void;
  /** Sends enquire_link on the first bound session; resolves with the response's command_status. */
  enquireLink(): Promise<number>;
  dropAll(): void;
  waitFor(cond: () => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const MESSAGE_STATE: Record<string, number> = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

interface SimSession {
  session: any;
  connection: number;
  bound: "" | "bind_transceiver" | "bind_transmitter" | "bind_receiver";
  outstanding: number;
}

function pad(s: string, n: number | undefined): string {
  return n ? s.padStart(n, "0") : s;
}

function smppDate(d: Date): string {
  const p = (x: number) => String(x).padStart(2, "0");
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

export async function startSmsc(opts: SmscOptions = {}): Promise<Smsc> {
  const record = opts.record ?? true;
  const sessions = new Set<SimSession>();
  const submits: SubmitRecord[] = [];
  const binds: BindRecord[] = [];
  const nacks: number[] = [];
  let connections = 0;
  let maxBound = 0;
  let submitCount = 0;
  let maxOutstanding = 0;
  let enquireLinks = 0;
  let unbinds = 0;
  let nextId = opts.firstId ?? 1_000_000;
  let dropped = false;
  let rr = 0;

  function ids(submit: number): { resp: string; receipt: string } {
    const n = opts.idNumber ? opts.idNumber(submit) : nextId++;
    const dec = String(n);
    const hex = n.toString(16).toUpperCase();
    switch (opts.idBase ?? "dec") {
      case "dec":
        return { resp: pad(dec, opts.respIdPad), receipt: pad(dec, opts.receiptIdPad) };
      case "hex":
        return { resp: pad(hex, opts.respIdPad), receipt: pad(hex, opts.receiptIdPad) };
      case "resp_hex_receipt_dec":
        return { resp: pad(hex, opts.respIdPad), receipt: pad(dec, opts.receiptIdPad) };
      case "resp_dec_receipt_hex":
        return { resp: pad(dec, opts.respIdPad), receipt: pad(hex.toLowerCase(), opts.receiptIdPad) };
    }
  }

  function boundSessions(): number {
    let n = 0;
    for (const s of sessions) if (s.bound) n++;
    return n;
  }

  function receiverSessions(): SimSession[] {
    return [...sessions].filter((s) => s.bound === "bind_transceiver" || s.bound === "bind_receiver");
  }

  function deliver(pduOpts: Record<string, unknown>, on?: number): Promise<number> {
    const rx = receiverSessions().filter((s) => on === undefined || s.connection === on);
    if (rx.length === 0) return Promise.reject(new Error("no receiver bound"));
    // Receipts and MO go round-robin over RX/TRX binds, as real SMSCs do.
    const target = rx[rr++ % rx.length]!;
    return new Promise((resolve, reject) => {
      const ok = target.session.deliver_sm(pduOpts, (resp: any) => resolve(resp.command_status));
      if (!ok) reject(new Error("socket not writable"));
    });
  }

  function receiptPdu(r: ReceiptOptions): Record<string, unknown> {
    const stat = r.stat ?? "DELIVRD";
    const format = r.format ?? "tlv+text";
    const now = smppDate(new Date());
    let text = r.text;
    if (text === undefined) {
      if (format === "odd-text") {
        text = `ID:  ${r.id}  Sub:1 DLVRD:1 submitdate:${now}00 donedate:${now}00   Stat:  ${stat.toLowerCase()}   Err:0 Text:hi id:999`;
      } else if (format === "tlv") {
        text = "";
      } else {
        text = `id:${r.id} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:${stat} err:000 text:hello`;
      }
    }
    const pdu: Record<string, unknown> = {
      source_addr: r.from ?? "447700900001",
      destination_addr: "SENDER",
      esm_class: r.esmClass ?? 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, "latin1"),
    };
    if (format === "tlv" || format === "tlv+text") {
      pdu.receipted_message_id = r.id;
      pdu.message_state = r.messageState ?? MESSAGE_STATE[stat] ?? 7;
    }
    return pdu;
  }

  function onSubmit(sim: SimSession, pdu: any): void {
    const n = ++submitCount;
    sim.outstanding++;
    if (sim.outstanding > maxOutstanding) maxOutstanding = sim.outstanding;
    const raw: Buffer = pdu.short_message?.raw ?? Buffer.alloc(0);
    const udhi = (pdu.esm_class & 0x40) !== 0 && raw.length > 0;
    const udhLen = udhi ? raw[0]! + 1 : 0;
    const rec: SubmitRecord = {
      n,
      connection: sim.connection,
      sequence: pdu.sequence_number,
      sourceAddr: pdu.source_addr,
      sourceTon: pdu.source_addr_ton,
      sourceNpi: pdu.source_addr_npi,
      destAddr: pdu.destination_addr,
      destTon: pdu.dest_addr_ton,
      destNpi: pdu.dest_addr_npi,
      esmClass: pdu.esm_class,
      dataCoding: pdu.data_coding,
      registeredDelivery: pdu.registered_delivery,
      validityPeriod: typeof pdu.validity_period === "string" ? pdu.validity_period : "",
      raw,
      udh: raw.subarray(0, udhLen),
      body: raw.subarray(udhLen),
    };
    if (pdu.sar_msg_ref_num !== undefined) rec.sar = { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum };
    if (pdu.message_payload) rec.messagePayload = pdu.message_payload.raw ?? pdu.message_payload;
    if (record) submits.push(rec);

    if (opts.dropAfter && n >= opts.dropAfter && !dropped) {
      dropped = true;
      api.dropAll();
      return;
    }
    if (opts.neverAnswer) return;

    let status = 0;
    if (opts.throttleEvery && n % opts.throttleEvery === 0) status = 0x58;
    status = opts.submitStatus?.(n, rec) || status;
    const id = ids(n);
    rec.respId = id.resp;
    rec.receiptId = id.receipt;
    const respond = () => {
      sim.outstanding--;
      sim.session.send(pdu.response(status === 0 ? { message_id: id.resp } : { command_status: status }));
    };
    const receipt = () => {
      if (status !== 0 || !opts.sendReceipts || !(pdu.registered_delivery & 0x03)) return;
      deliver(receiptPdu({ id: id.receipt, stat: opts.receiptStat, format: opts.receiptFormat, from: rec.destAddr })).catch(() => {});
    };
    if (opts.receiptBeforeResp) {
      receipt();
      setTimeout(respond, Math.max(5, opts.respondDelayMs ?? 0));
      return;
    }
    const afterResp = () => {
      respond();
      if (opts.receiptDelayMs) setTimeout(receipt, opts.receiptDelayMs);
      else receipt();
    };
    if (opts.respondDelayMs) setTimeout(afterResp, opts.respondDelayMs);
    else afterResp();
  }

  const onSession = (session: any) => {
    const sim: SimSession = { session, connection: ++connections, bound: "", outstanding: 0 };
    sessions.add(sim);
    session.on("error", () => {});
    session.socket.on("close", () => sessions.delete(sim));
    const onBind = (command: SimSession["bound"]) => (pdu: any) => {
      let status = (typeof opts.bindStatus === "function" ? opts.bindStatus(command) : opts.bindStatus) ?? 0;
      if (!status && opts.systemId !== undefined && pdu.system_id !== opts.systemId) status = 0x0f;
      if (!status && opts.password !== undefined && pdu.password !== opts.password) status = 0x0e;
      binds.push({ connection: sim.connection, command: command as string, systemId: pdu.system_id, password: pdu.password, status });
      session.send(pdu.response(status ? { command_status: status } : { system_id: "SIMSMSC" }));
      if (status === 0) sim.bound = command;
      maxBound = Math.max(maxBound, boundSessions());
    };
    session.on("bind_transceiver", onBind("bind_transceiver"));
    session.on("bind_transmitter", onBind("bind_transmitter"));
    session.on("bind_receiver", onBind("bind_receiver"));
    session.on("submit_sm", (pdu: any) => {
      if (sim.bound === "bind_receiver" || sim.bound === "") {
        session.send(pdu.response({ command_status: 0x04 }));
        return;
      }
      onSubmit(sim, pdu);
    });
    session.on("enquire_link", (pdu: any) => {
      enquireLinks++;
      if (!opts.ignoreEnquireLink) session.send(pdu.response());
    });
    session.on("unbind", (pdu: any) => {
      unbinds++;
      sim.bound = "";
      session.send(pdu.response());
      session.close();
    });
    session.on("generic_nack", (pdu: any) => nacks.push(pdu.command_status));
  };

  const server = opts.tls ? smpp.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onSession) : smpp.createServer(onSession);
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;

  const api: Smsc = {
    port,
    submits,
    binds,
    nacks,
    get connections() {
      return connections;
    },
    get openSessions() {
      return sessions.size;
    },
    get boundNow() {
      return boundSessions();
    },
    get maxBound() {
      return maxBound;
    },
    boundConnections() {
      return [...sessions].filter((x) => x.bound).map((x) => x.connection);
    },
    get maxOutstanding() {
      return maxOutstanding;
    },
    get submitCount() {
      return submitCount;
    },
    get enquireLinks() {
      return enquireLinks;
    },
    get unbinds() {
      return unbinds;
    },
    sendMo(m) {
      const pdu: Record<string, unknown> = {
        source_addr: m.from,
        source_addr_ton: 1,
        source_addr_npi: 1,
        destination_addr: m.to,
        esm_class: m.esmClass ?? 0,
        data_coding: m.dataCoding,
        short_message: m.shortMessage,
      };
      if (m.sar) {
        pdu.sar_msg_ref_num = m.sar.ref;
        pdu.sar_total_segments = m.sar.total;
        pdu.sar_segment_seqnum = m.sar.seq;
      }
      if (m.messagePayload) pdu.message_payload = m.messagePayload;
      return deliver(pdu);
    },
    sendReceipt(r, on) {
      return deliver(receiptPdu(r), on);
    },
    sendRaw(bytes) {
      for (const s of sessions) (s.session.socket as Socket).write(bytes);
    },
    unbindAll() {
      for (const s of sessions) if (s.bound) s.session.unbind();
    },
    enquireLink() {
      const s = [...sessions].find((x) => x.bound);
      if (!s) return Promise.reject(new Error("no session bound"));
      return new Promise((resolve) => s.session.enquire_link({}, (resp: any) => resolve(resp.command_status)));
    },
    dropAll() {
      for (const s of sessions) (s.session.socket as Socket).destroy();
      sessions.clear();
    },
    async waitFor(cond, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      while (!cond()) {
        if (Date.now() > until) throw new Error("waitFor: timed out");
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      api.dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
