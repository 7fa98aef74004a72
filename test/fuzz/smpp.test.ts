// Hostile SMPP. The PDU decoder (adapters/smpp/pdu.ts) on random and mutated frames: it returns a PDU
// or throws SmppFramingError, nothing else. Then a malicious SMSC on loopback feeding the compiled
// gateway garbage over a real bind: the gateway survives, re-binds, and a PDU one byte over
// max_pdu_bytes costs only the connection.
import { afterAll, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { Command, type ShortMessageFields } from "../../adapters/smpp/pdu.ts";
import { decodePdu, FrameReader, SmppFramingError } from "../../adapters/smpp/pdu-decode.ts";
import { encodeIdResponse, encodeShortMessage } from "../../adapters/smpp/pdu-encode.ts";
import { freePort, type Running } from "../support/binary.ts";
import { FULL, intIn, pickOf, rng, SEED, startGateway, stopGateway, summary, tempDir, testConfigDoc, until } from "../chaos/harness.ts";

const CASES = FULL ? 10_000 : 1_000;
const MAX_PDU = 4096;

function sm(r: () => number): ShortMessageFields {
  return {
    serviceType: "", sourceTon: 1, sourceNpi: 1, sourceAddr: "12025550100", destTon: 1, destNpi: 1, destAddr: "18885551234",
    esmClass: pickOf(r, [0, 0x04, 0x40]), protocolId: 0, priorityFlag: 0, scheduleDeliveryTime: "", validityPeriod: "",
    registeredDelivery: 0, replaceIfPresent: 0, dataCoding: pickOf(r, [0, 8, 4, 0xf0]), smDefaultMsgId: 0,
    shortMessage: new Uint8Array(intIn(r, 0, 160)).map(() => intIn(r, 0, 255)),
    tlvs: r() < 0.5 ? [{ tag: 0x001e, value: new TextEncoder().encode("123\0") }, { tag: 0x0427, value: Uint8Array.of(2) }] : [],
  };
}

function validFrame(r: () => number, seq: number): Buffer {
  switch (intIn(r, 0, 3)) {
    case 0: return encodeShortMessage(Command.deliver_sm, seq, sm(r));
    case 1: return encodeShortMessage(Command.submit_sm, seq, sm(r));
    case 2: return encodeIdResponse(Command.submit_sm_resp, 0, seq, `id${seq}`);
    default: return encodeIdResponse(Command.bind_transceiver_resp, 0, seq, "SMSC");
  }
}

function mutated(r: () => number, seq: number): Buffer {
  if (r() < 0.2) return Buffer.from(Array.from({ length: intIn(r, 0, 300) }, () => intIn(r, 0, 255)));
  const f = Buffer.from(validFrame(r, seq));
  for (let k = intIn(r, 1, 6); k > 0; k--) {
    const at = intIn(r, 0, Math.max(0, f.length - 1));
    switch (intIn(r, 0, 4)) {
      case 0: f[at] = intIn(r, 0, 255); break;
      case 1: if (f.length >= 4) f.writeUInt32BE(pickOf(r, [0, 15, 16, f.length - 1, f.length + 1, 0xffffffff, MAX_PDU + 1]), 0); break;
      case 2: if (f.length >= 8) f.writeUInt32BE(pickOf(r, [0x80000000, 0x12345678, Command.deliver_sm, Command.bind_transceiver, Command.generic_nack]), 4); break;
      case 3: f.fill(0xff, at, Math.min(f.length, at + intIn(r, 1, 20))); break;
      default: f.fill(0, at, Math.min(f.length, at + intIn(r, 1, 20))); break;
    }
  }
  return r() < 0.3 ? f.subarray(0, intIn(r, 0, f.length)) : f;
}

test(`PDU decoder: ${CASES} random and mutated frames → a PDU or SmppFramingError, nothing else`, () => {
  const r = rng(SEED ^ 0x5a);
  let decoded = 0;
  let framing = 0;
  let fatal = 0;
  const other: string[] = [];
  for (let i = 0; i < CASES; i++) {
    const f = mutated(r, i + 1);
    try {
      decodePdu(f);
      decoded++;
    } catch (e) {
      if (e instanceof SmppFramingError) {
        framing++;
        if (e.fatal) fatal++;
      } else other.push(`${(e as Error).name}: ${(e as Error).message} on ${f.toString("hex").slice(0, 80)}`);
    }
    // The stream framer, too: feed the same bytes in random chunks.
    const reader = new FrameReader(MAX_PDU);
    try {
      for (let at = 0; at < f.length; ) {
        const n = intIn(r, 1, 64);
        reader.feed(f.subarray(at, at + n), (frame) => {
          try {
            decodePdu(frame);
          } catch (e) {
            if (!(e instanceof SmppFramingError)) throw e;
          }
        });
        at += n;
      }
    } catch (e) {
      if (!(e instanceof SmppFramingError)) other.push(`FrameReader ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  summary(`fuzz: smpp-decoder cases=${CASES} decoded=${decoded} framing_errors=${framing} fatal=${fatal} other_errors=${other.length}`);
  expect(other.slice(0, 5)).toEqual([]);
});

let gw: Running | null = null;
let server: TCPSocketListener<{ buf: Buffer; bound: boolean }> | null = null;
afterAll(async () => {
  // SIGTERM's graceful unbind waits for an unbind_resp this SMSC never sends: give it its timeout.
  await stopGateway(gw);
  server?.stop(true);
}, 30000);

test("malicious SMSC over a real bind: garbage, mutated PDUs, oversized frames → the gateway survives and re-binds", async () => {
  const r = rng(SEED ^ 0x99);
  let binds = 0;
  let connections = 0;
  let closedByGateway = 0;
  let nacks = 0;
  const sessions = new Set<Socket<{ buf: Buffer; bound: boolean }>>();
  server = Bun.listen<{ buf: Buffer; bound: boolean }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        connections++;
        s.data = { buf: Buffer.alloc(0), bound: false };
        sessions.add(s);
      },
      data(s, chunk) {
        s.data.buf = Buffer.concat([s.data.buf, chunk]);
        while (s.data.buf.length >= 16) {
          const len = s.data.buf.readUInt32BE(0);
          if (len < 16 || s.data.buf.length < len) break;
          const pdu = s.data.buf.subarray(0, len);
          s.data.buf = s.data.buf.subarray(len);
          const id = pdu.readUInt32BE(4);
          const seq = pdu.readUInt32BE(12);
          if (id === Command.bind_transceiver) {
            binds++;
            s.data.bound = true;
            s.write(encodeIdResponse(Command.bind_transceiver_resp, 0, seq, "EVIL"));
          } else if (id === Command.enquire_link) s.write(encodeIdResponse(Command.enquire_link_resp, 0, seq).subarray(0, 16));
          else if (id === Command.generic_nack) nacks++;
        }
      },
      close(s) {
        sessions.delete(s);
        closedByGateway++;
      },
    },
  });
  const dir = tempDir("gw-fuzz-smpp-");
  gw = await startGateway(
    dir,
    testConfigDoc(dir, { carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: server.port, system_id: "gw", password: "pw", max_pdu_bytes: MAX_PDU, reconnect_min_ms: 50, reconnect_max_ms: 200 } } }),
    freePort(),
  );
  await until("bound", () => binds > 0, 10000);
  const rounds = FULL ? 2000 : 300;
  let sent = 0;
  for (let i = 0; i < rounds; i++) {
    const bound = [...sessions].filter((s) => s.data.bound);
    if (bound.length === 0) {
      await until("re-bound", () => [...sessions].some((s) => s.data.bound), 10000, 10);
      continue;
    }
    for (const s of bound) s.write(mutated(r, 1000 + i));
    sent++;
    if (i % 20 === 0) await Bun.sleep(5);
  }
  // One byte over max_pdu_bytes: a fatal framing error for that connection only. It goes first on a fresh
  // connection: on an old one a mutated frame may have declared a length the gateway is still reading, and the
  // oversized header would only be more of that body.
  for (const s of sessions) {
    s.data.bound = false;
    s.end();
  }
  await until("re-bound on a fresh connection", () => [...sessions].some((s) => s.data.bound), 10000, 10);
  const before = closedByGateway;
  const over = Buffer.alloc(MAX_PDU + 1);
  over.writeUInt32BE(MAX_PDU + 1, 0);
  over.writeUInt32BE(Command.deliver_sm, 4);
  for (const s of sessions) if (s.data.bound) s.write(over.subarray(0, 16));
  await until("connection dropped on the oversized frame", () => closedByGateway > before, 10000, 10);
  await until("re-bound after", () => [...sessions].some((s) => s.data.bound), 10000, 10);
  const alive = gw.proc.exitCode === null && (await fetch(`${gw.url}/healthz`)).ok;
  summary(`fuzz: smpp-malicious-smsc frames_sent=${sent} connections=${connections} binds=${binds} dropped_by_gateway=${closedByGateway} generic_nacks=${nacks} oversize_frame(${MAX_PDU + 1})=connection_dropped process_alive=${alive}`);
  expect(alive).toBe(true);
}, FULL ? 600_000 : 120_000);
