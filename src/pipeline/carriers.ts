// The carriers of the file, built from their config sections: the app starts them, SIGHUP replaces them.
import type { Logger } from "pino";
import type { BindLeases, MmsCarrier, SmsCarrier } from "../../adapters/carrier.ts";
import { createSandboxCarrier } from "../../adapters/sandbox/index.ts";
import { createMm7Carrier, type Mm7Carrier } from "../../adapters/mm7/index.ts";
import { createSmppCarrier } from "../../adapters/smpp/index.ts";
import { carrierEntries, mm7Settings, smppSettings, type Config, type MmsSection } from "../config.ts";
import { carrierLog } from "../observe/log.ts";

/** One configured carrier, built: what routes call it, its channel, and the MM7 endpoint it takes reports on. */
export interface BuiltCarrier {
  key: string;
  channel: "mms" | "sms";
  carrier: MmsCarrier | SmsCarrier;
  concurrency: number;
  /** MM7 carriers: the path their MMSC posts reports and MO to. */
  inboundPath: string | null;
  mm7: Mm7Carrier | null;
}

/**
 * Every carrier of the file. The MMSC of [carriers.mms] posts to inbound.mm7.path as before; one of
 * [carriers.NAME] posts to inbound.mm7.path + "/NAME", so its reports are matched to its own ids.
 */
export function createCarriers(config: Config, log: Logger, now: () => number, binds: (carrier: string) => BindLeases, entries = carrierEntries(config)): BuiltCarrier[] {
  return entries.map(({ key, channel, section }): BuiltCarrier => {
    const child = { log: carrierLog(log, section.name), now };
    const base = { key, channel, concurrency: section.concurrency };
    if (section.kind === "mm7") {
      const mm7 = createMm7Carrier(mm7Settings(config, key), child);
      return { ...base, carrier: mm7, mm7, inboundPath: key === "mms" ? config.inbound.mm7.path : `${config.inbound.mm7.path.replace(/\/$/, "")}/${key}` };
    }
    if (section.kind === "smpp") {
      return { ...base, carrier: createSmppCarrier(section.name, smppSettings(config, key), { ...child, binds: binds(section.name) }), mm7: null, inboundPath: null };
    }
    const maxMessageBytes = channel === "mms" ? (section as MmsSection).max_message_bytes : undefined;
    return { ...base, carrier: createSandboxCarrier({ name: section.name, channel, reportDelayMs: section.sandbox_report_delay_ms, now, maxMessageBytes }), mm7: null, inboundPath: null };
  });
}
