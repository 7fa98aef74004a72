// The carriers of the file, live: built at start, swapped on SIGHUP. The dispatcher, the router and the
// MM7 inbound endpoint look carriers up here at each use, so a reload takes effect at the next message
// or request while whatever holds the old object (a submit in flight, a report being read) finishes with it.
import type { Logger } from "pino";
import type { BindLeases, CarrierEvents, MmsCarrier, SmsCarrier } from "../../adapters/carrier.ts";
import { createMm7Carrier, type Mm7Carrier } from "../../adapters/mm7/index.ts";
import { createSandboxCarrier } from "../../adapters/sandbox/index.ts";
import { createSmppCarrier } from "../../adapters/smpp/index.ts";
import { carrierEntries, mm7Settings, smppSettings, type CarrierEntry, type Config, type MmsSection } from "../config.ts";
import { carrierLog } from "../observe/log.ts";
import type { ChannelCarrier } from "./dispatcher.ts";

/** One configured carrier, built: what routes call it, its channel, and the MM7 endpoint it takes reports on. */
export interface BuiltCarrier {
  key: string;
  channel: "mms" | "sms";
  carrier: MmsCarrier | SmsCarrier;
  concurrency: number;
  mm7: Mm7Carrier | null;
  /** SMPP: binds count against the SMSC's limit, so a replacement binds only after its predecessor unbound. */
  binds: boolean;
  /** What the carrier was built from: a reload replaces it when this differs. */
  settings: string;
}

function settingsOf(config: Config, e: CarrierEntry): string {
  // An MM7 carrier also checks the MMSC's credentials ([inbound.mm7]): a rotation replaces it.
  return JSON.stringify(e.section.kind === "mm7" ? mm7Settings(config, e.key) : e.section);
}

function build(config: Config, d: CarrierSetDeps, e: CarrierEntry): BuiltCarrier {
  const { log, now } = d;
  const { key, channel, section } = e;
  const child = { log: carrierLog(log, section.name), now };
  const base = { key, channel, concurrency: section.concurrency, settings: settingsOf(config, e), binds: section.kind === "smpp" };
  if (section.kind === "mm7") {
    const mm7 = createMm7Carrier(mm7Settings(config, key), child);
    return { ...base, carrier: mm7, mm7 };
  }
  if (section.kind === "smpp") return { ...base, carrier: createSmppCarrier(section.name, smppSettings(config, key), { ...child, binds: d.binds(section.name) }), mm7: null };
  const maxMessageBytes = channel === "mms" ? (section as MmsSection).max_message_bytes : undefined;
  return { ...base, carrier: createSandboxCarrier({ name: section.name, channel, reportDelayMs: section.sandbox_report_delay_ms, now, maxMessageBytes }), mm7: null };
}

export interface CarrierSetDeps {
  log: Logger;
  now: () => number;
  /** An SMPP carrier's bind slots, leased in the store (the SMSC's bind limit holds for the cluster). */
  binds: (carrier: string) => BindLeases;
  /** Called once per started carrier: the messages it took and has not reported on (the sandbox resumes them). */
  openCarrierIds: (carrier: string) => Promise<{ carrierMessageId: string; to: string }[]>;
}

export class CarrierSet {
  readonly built: BuiltCarrier[];
  /** Every carrier by its name, for the dispatcher (the same Map object for the app's life). */
  readonly byName = new Map<string, ChannelCarrier>();
  private events: CarrierEvents | null = null;

  constructor(
    config: Config,
    private readonly d: CarrierSetDeps,
  ) {
    this.built = carrierEntries(config).map((e) => build(config, d, e));
    for (const b of this.built) this.byName.set(b.carrier.name, { channel: b.channel, carrier: b.carrier } as ChannelCarrier);
  }

  async start(events: CarrierEvents): Promise<void> {
    this.events = events;
    for (const b of this.built) await this.startOne(b);
  }

  /** The MM7 carrier whose endpoint is `key`'s now, or null. */
  mm7(key: string): Mm7Carrier | null {
    return this.built.find((b) => b.key === key)?.mm7 ?? null;
  }

  /** Submits in flight per channel over all its carriers. */
  concurrency(channel: "mms" | "sms"): number {
    return this.built.filter((b) => b.channel === channel).reduce((n, b) => n + b.concurrency, 0);
  }

  /**
   * Takes the carriers of `next`: unchanged ones keep their binds and in-flight work; new ones start;
   * changed ones are replaced and removed ones drain. The lookup switches at once (new submits and
   * reports go to the replacement); the returned promise settles when every dropped carrier has
   * finished or handed back what it had in flight, within `deadlineMs`.
   */
  async reload(next: Config, deadlineMs: number): Promise<{ said: string[]; drained: Promise<void> }> {
    const said: string[] = [];
    const wanted = carrierEntries(next);
    const dropped: BuiltCarrier[] = [];
    for (const b of this.built) {
      const w = wanted.find((e) => e.key === b.key);
      if (!w) said.push(`carrier ${b.key} removed: draining`);
      else if (settingsOf(next, w) !== b.settings) said.push(`carrier ${b.key} changed: replaced`);
      else continue;
      dropped.push(b);
    }
    const kept = this.built.filter((b) => !dropped.includes(b));
    const fresh = wanted.filter((e) => !kept.some((b) => b.key === e.key)).map((e) => build(next, this.d, e));
    for (const b of fresh) if (!dropped.some((x) => x.key === b.key)) said.push(`carrier ${b.key} added`);
    // Swapped in one step: the next submit or report finds the replacement. The old ones are stopped
    // after the swap, so a submit they hand back unsent finds the replacement already there.
    for (const b of dropped) {
      this.built.splice(this.built.indexOf(b), 1);
      this.byName.delete(b.carrier.name);
    }
    for (const b of fresh) {
      this.built.push(b);
      this.byName.set(b.carrier.name, { channel: b.channel, carrier: b.carrier } as ChannelCarrier);
    }
    const stopping = new Map(dropped.map((b) => [b.carrier.name, b.carrier.stop(deadlineMs)]));
    const drained = Promise.all(stopping.values()).then(() => undefined);
    // A replaced SMPP carrier unbinds and gives its bind slots back first: the SMSC's bind limit holds.
    // An MM7 one holds nothing: its replacement serves at once while it finishes what it has.
    if (this.events) await Promise.all(fresh.map(async (b) => (b.binds && (await stopping.get(b.carrier.name)), await this.startOne(b))));
    return { said, drained };
  }

  async stop(deadlineMs: number): Promise<void> {
    await Promise.all(this.built.map((b) => b.carrier.stop(deadlineMs)));
  }

  private async startOne(b: BuiltCarrier): Promise<void> {
    await b.carrier.start(this.events!);
    b.carrier.resume?.(await this.d.openCarrierIds(b.carrier.name));
  }
}
