// A carrier wired to a simulator, with recorded callbacks and logs, for the SMPP integration tests.
import { afterEach } from "bun:test";
import type { CarrierReceipt, InboundMessage, MoIncomplete } from "../../adapters/carrier.ts";
import type { SmppSettings } from "../../adapters/smpp/settings.ts";
import { createSmppCarrier, type SmppCarrier } from "../../adapters/smpp/smpp-carrier.ts";
import { startSmsc, type Smsc, type SmscOptions } from "./smpp-sim.ts";

export interface LogLine {
  level: string;
  obj: object;
  msg: string | undefined;
}

export interface Harness {
  carrier: SmppCarrier;
  receipts: CarrierReceipt[];
  inbound: InboundMessage[];
  /** Concatenated MO given up before all parts came. */
  moIncomplete: MoIncomplete[];
  logs: LogLine[];
  /** Events in arrival order, e.g. "receipt:123", "submit-resolved". */
  timeline: string[];
  /** Make the next receipt/inbound callbacks reject (the pipeline could not store). */
  failNext: { receipt: number; inbound: number };
}

/** Every line every harness carrier of the test file logged (the secrets scan reads it). */
export const everyLogLine: LogLine[] = [];

export function recordingLogger(lines: LogLine[]) {
  const at = (level: string) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg });
    everyLogLine.push({ level, obj, msg });
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** Fast timers so scenarios finish in well under a second. */
export const fastSettings: Partial<SmppSettings> = {
  system_id: "esme",
  password: "secret",
  tps: 0,
  response_timeout_ms: 2_000,
  connect_timeout_ms: 1_000,
  reconnect_min_ms: 30,
  reconnect_max_ms: 200,
  bind_failure_retry_ms: 400,
  throttle_pause_ms: 200,
  unbind_timeout_ms: 300,
};

async function startCarrier(smsc: Smsc, settings: Partial<SmppSettings> = {}, start = true): Promise<Harness> {
  const logs: LogLine[] = [];
  const h: Harness = {
    carrier: createSmppCarrier("sms", { ...fastSettings, port: smsc.port, ...settings }, { log: recordingLogger(logs), now: Date.now }),
    receipts: [],
    inbound: [],
    moIncomplete: [],
    logs,
    timeline: [],
    failNext: { receipt: 0, inbound: 0 },
  };
  if (start) {
    await h.carrier.start({
      receipt: async (r) => {
        h.timeline.push(`receipt:${r.carrierMessageId}`);
        if (h.failNext.receipt > 0) {
          h.failNext.receipt--;
          throw new Error("store unavailable");
        }
        h.receipts.push(r);
      },
      inbound: async (m) => {
        if (h.failNext.inbound > 0) {
          h.failNext.inbound--;
          throw new Error("store unavailable");
        }
        h.inbound.push(m);
      },
      moIncomplete: (d) => h.moIncomplete.push(d),
    });
  }
  return h;
}

export function sms(text: string, to = "+447700900123", from = "ACME") {
  return { messageId: `m-${Math.random().toString(36).slice(2)}`, from, to, text };
}

/**
 * One simulator and one carrier per test, both stopped after it (registers the afterEach). `setup`
 * starts both; `carrierOn` starts only a carrier, against a simulator the test made itself.
 */
export function smppTestBed() {
  let smsc: Smsc | undefined;
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.carrier.stop(500);
    await smsc?.stop();
    h = undefined;
    smsc = undefined;
  });
  const carrierOn = async (peer: Smsc, settings: Partial<SmppSettings> = {}) => (h = await startCarrier(peer, settings));
  return {
    carrierOn,
    async setup(sim: SmscOptions = {}, settings: Partial<SmppSettings> = {}) {
      smsc = await startSmsc(sim);
      return { smsc, h: await carrierOn(smsc, settings) };
    },
  };
}
