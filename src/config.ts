// The configuration: one TOML file, `${NAME}` replaced from the environment, validated by one TypeBox
// schema (config-schema.ts), resolved once here: durations in milliseconds, each part's slice. Every
// default lives in the schema and nowhere else.
import { hostname } from "node:os";
import type { TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType } from "@sinclair/typebox/value";
import { resolveMm7Settings, type Mm7Settings } from "../adapters/mm7/index.ts";
import { resolveSettings as resolveSmppSettings, type SmppSettings } from "../adapters/smpp/index.ts";
import { ConfigSchema, namedCarrierSchema, type Config, type MmsSection, type NamedCarrierSection, type SmsSection } from "./config-schema.ts";
import type { DeliveryPolicy } from "./domain/decisions.ts";
import type { Channel } from "./domain/message.ts";
import { routeShadowedBy } from "./domain/route.ts";
import type { StoreOptions } from "./store/index.ts";

export type { AccountConfig, Config, MmsSection, NamedCarrierSection, RouteConfig, SmsSection } from "./config-schema.ts";

/** The adapter's own view of a carrier section: the section less the gateway's keys. */
export function mm7Settings(c: Config, key = "mms"): Mm7Settings {
  const { kind: _k, sandbox_report_delay_ms: _s, channel: _ch, adapt_media: _a, image_max_edge_px: _e, ...rest } = c.carriers[key] as MmsSection & { channel?: Channel };
  return resolveMm7Settings({ ...rest, inbound_username: c.inbound.mm7.username, inbound_password: c.inbound.mm7.password });
}

export function smppSettings(c: Config, key = "sms"): SmppSettings {
  const { kind: _k, name: _n, concurrency: _c, sandbox_report_delay_ms: _s, channel: _ch, ...rest } = c.carriers[key] as SmsSection & { channel?: Channel };
  return resolveSmppSettings(rest);
}

export interface CarrierEntry {
  /** The table key: what routes name. */
  key: string;
  channel: Channel;
  section: MmsSection | SmsSection;
}

/** Every configured carrier with its channel: `mms` and `sms` (each channel's default) first. */
export function carrierEntries(c: Config): CarrierEntry[] {
  const keys = ["mms", "sms", ...Object.keys(c.carriers).filter((k) => k !== "mms" && k !== "sms")];
  return keys.map((key) => ({
    key,
    section: c.carriers[key]!,
    channel: key === "mms" || key === "sms" ? key : (c.carriers[key] as NamedCarrierSection).channel,
  }));
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`configuration has ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  }
}

/** Replaces `${NAME}` in every string value; a missing variable is a problem naming the key. */
function substituteEnv(node: unknown, env: Record<string, string | undefined>, path: string, problems: string[]): unknown {
  if (typeof node === "string") {
    return node.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${keyName(path)}: environment variable ${name} is not set`);
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(node)) return node.map((v, i) => substituteEnv(v, env, `${path}/${i}`, problems));
  if (node && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = substituteEnv(v, env, `${path}/${k}`, problems);
    return out;
  }
  return node;
}

function keyName(path: string): string {
  return path.replace(/^\//, "").replace(/\//g, ".") || "(top level)";
}

/** Validates a parsed document, fills defaults, and returns every problem at once. */
export function buildConfig(raw: unknown, env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = [];
  const substituted = Value.Clone(substituteEnv(raw ?? {}, env, "", problems)) as Record<string, unknown>;
  const named = takeNamedCarriers(substituted, problems);
  const withDefaults = Value.Default(ConfigSchema, substituted) as Record<string, unknown>;
  schemaProblems(ConfigSchema, withDefaults, "", problems);
  for (const [key, { schema, section }] of named) {
    const filled = Value.Default(schema, section);
    schemaProblems(schema, filled, `/carriers/${key}`, problems);
    (withDefaults.carriers as Record<string, unknown>)[key] = filled;
  }
  const config = withDefaults as Config;
  if (problems.length === 0) problems.push(...semanticProblems(config));
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return config;
}

function schemaProblems(schema: TSchema, value: unknown, prefix: string, problems: string[]): void {
  for (const e of Value.Errors(schema, value)) {
    const path = prefix + e.path;
    if (e.type === ValueErrorType.ObjectAdditionalProperties) {
      problems.push(`${keyName(path)}: unknown key`);
      continue;
    }
    problems.push(`${keyName(path)}: ${e.message}${e.value !== undefined && typeof e.value !== "object" ? ` (got ${JSON.stringify(e.value)})` : ""}`);
  }
}

const channelOfKind: Record<string, Channel | undefined> = { mm7: "mms", smpp: "sms" };

/**
 * Takes `[carriers.NAME]` tables other than mms and sms out of the document: each is checked against
 * the mms or sms keys according to its channel, which its kind implies (sandbox must say it).
 */
function takeNamedCarriers(doc: Record<string, unknown>, problems: string[]): Map<string, { schema: TSchema; section: Record<string, unknown> }> {
  const out = new Map<string, { schema: TSchema; section: Record<string, unknown> }>();
  const carriers = doc.carriers;
  if (!carriers || typeof carriers !== "object" || Array.isArray(carriers)) return out;
  for (const [key, section] of Object.entries(carriers as Record<string, unknown>)) {
    if (key === "mms" || key === "sms") continue;
    delete (carriers as Record<string, unknown>)[key];
    const where = `carriers.${key}`;
    if (!/^[A-Za-z0-9_-]+$/.test(key)) {
      problems.push(`${where}: a carrier name is letters, digits, "_" and "-"`);
      continue;
    }
    if (!section || typeof section !== "object" || Array.isArray(section)) {
      problems.push(`${where}: expected a table`);
      continue;
    }
    const s = section as Record<string, unknown>;
    const implied = channelOfKind[String(s.kind)];
    if (s.kind === undefined) problems.push(`${where}.kind: required ("mm7", "smpp" or "sandbox")`);
    else if (s.kind !== "sandbox" && !implied) problems.push(`${where}.kind: expected "mm7", "smpp" or "sandbox" (got ${JSON.stringify(s.kind)})`);
    else if (s.kind === "sandbox" && s.channel === undefined) problems.push(`${where}.channel: required for kind "sandbox" ("mms" or "sms")`);
    else if (implied && s.channel !== undefined && s.channel !== implied) problems.push(`${where}.channel: kind "${s.kind}" serves "${implied}" (got ${JSON.stringify(s.channel)})`);
    else if (s.channel !== undefined && s.channel !== "mms" && s.channel !== "sms") problems.push(`${where}.channel: expected "mms" or "sms" (got ${JSON.stringify(s.channel)})`);
    else {
      const channel = implied ?? (s.channel as Channel);
      out.set(key, { schema: namedCarrierSchema(key, channel), section: { ...s, channel } });
    }
  }
  return out;
}

function semanticProblems(c: Config): string[] {
  const p: string[] = [];
  const hostPort = /^(\[[0-9a-fA-F:.]+\]|[^:]+):\d{1,5}$/;
  if (!hostPort.test(c.server.listen)) p.push(`server.listen: expected HOST:PORT (got "${c.server.listen}")`);
  if (c.inbound.listen !== "" && !hostPort.test(c.inbound.listen)) p.push(`inbound.listen: expected HOST:PORT or empty (got "${c.inbound.listen}")`);
  if (c.inbound.listen !== "" && c.inbound.listen === c.server.listen && !c.server.listen.endsWith(":0")) p.push("inbound.listen: must differ from server.listen (empty = share it)");
  if (Boolean(c.server.tls_cert) !== Boolean(c.server.tls_key)) p.push("server.tls_cert / server.tls_key: set both or neither");
  const ids = new Set<string>();
  c.accounts.forEach((a, i) => {
    if (ids.has(a.id)) p.push(`accounts.${i}.id: duplicate account id "${a.id}"`);
    ids.add(a.id);
    for (const h of Object.keys(a.headers)) {
      if (!/^chan-[A-Za-z0-9-]+$/i.test(h)) p.push(`accounts.${i}.headers.${h}: Bloomreach sends settings as Chan-* headers; "${h}" would never arrive`);
    }
    if (a.inbound_url && !/^https?:\/\//.test(a.inbound_url)) p.push(`accounts.${i}.inbound_url: must be an http(s) URL`);
  });
  // A request carrying account B's headers would also match A when A's headers are a subset of B's:
  // its messages would be stored and signed as the wrong account.
  c.accounts.forEach((a, i) => {
    c.accounts.forEach((b, j) => {
      if (i === j) return;
      const bHeaders = new Map(Object.entries(b.headers).map(([k, v]) => [k.toLowerCase(), v]));
      if (Object.entries(a.headers).every(([k, v]) => bHeaders.get(k.toLowerCase()) === v)) {
        p.push(`accounts.${i}.headers: every header of account "${a.id}" is also account "${b.id}"'s; a request could not tell them apart`);
      }
    });
  });
  // Receipts are matched by (carrier name, carrier id): two carriers with one name would mix them up.
  const names = new Map<string, string>();
  // An SMSC may deliver a receipt on any receiver bind of its account; two carrier entries on one account
  // would take each other's receipts and match none of them.
  const smscAccounts = new Map<string, string>();
  for (const { key, channel, section } of carrierEntries(c)) {
    if (section.kind === "smpp") {
      const s = section as { host?: unknown; port?: unknown; system_id?: unknown };
      const account = JSON.stringify([s.host, s.port, s.system_id]);
      const other = smscAccounts.get(account);
      if (other !== undefined) {
        p.push(
          `carriers.${key}: same SMSC account as carriers.${other} (${String(s.host)}:${String(s.port)}, system_id ${JSON.stringify(s.system_id)}); ` +
            "the SMSC may send either one's receipts on the other's bind, and those would be lost: use one carrier with more `binds` and route to it",
        );
      }
      smscAccounts.set(account, key);
    }
    const other = names.get(section.name);
    if (other !== undefined) p.push(`carriers.${key}.name: must differ from carriers.${other}.name ("${section.name}")`);
    names.set(section.name, key);
    if (section.kind === "mm7" && !/^https?:\/\//.test((section as MmsSection).url)) p.push(`carriers.${key}.url: required for kind = "mm7" (an http(s) URL)`);
    try {
      if (channel === "mms") mm7Settings(c, key);
      else smppSettings(c, key);
    } catch (e) {
      p.push(`carriers.${key}: ${(e as Error).message.replace(/^(mm7: |carriers\.sms\.)/, "")}`);
    }
  }
  p.push(...routeProblems(c), ...inboundNumberProblems(c));
  if (!c.inbound.mm7.path.startsWith("/")) p.push("inbound.mm7.path: must start with /");
  // Whoever can post to the MM7 endpoint can mark any message delivered or failed and send MO as the MMSC.
  // Every MM7 carrier's endpoint shares these credentials.
  const mm7Key = carrierEntries(c).find((e) => e.section.kind === "mm7")?.key;
  if (mm7Key !== undefined && c.inbound.mm7.username === "" && !c.inbound.mm7.allow_unauthenticated) {
    p.push(`inbound.mm7.username: required with carriers.${mm7Key}.kind = "mm7" (the MMSC must authenticate its reports and MO); set inbound.mm7.allow_unauthenticated = true only if nothing but the MMSC can reach this port`);
  } else if (mm7Key !== undefined && c.inbound.mm7.password === "" && !c.inbound.mm7.allow_unauthenticated) {
    p.push("inbound.mm7.password: required with inbound.mm7.username (a user name alone is no secret)");
  }
  if (c.store.kind === "postgres" && !/^postgres(ql)?:\/\//.test(c.store.url)) p.push('store.url: required for kind = "postgres" (postgres://user:password@host:5432/dbname)');
  if (c.media_link.base_url && !/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(c.media_link.base_url)) p.push("media_link.base_url: must be an http(s) URL without query or fragment");
  for (const [i, cidr] of c.egress.allow.entries()) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(cidr)) p.push(`egress.allow.${i}: expected a CIDR like 127.0.0.0/8 (got "${cidr}")`);
  }
  return p;
}

/** This node's name among the nodes sharing a PostgreSQL store. */
export function nodeId(c: Config): string {
  if (c.node.id) return c.node.id;
  const port = splitPort(c.server.listen);
  // Port 0 (the OS picks one) would give every node on a host the same name.
  return port === "0" ? `${hostname()}:0:${process.pid}` : `${hostname()}:${port}`;
}

function splitPort(listen: string): string {
  return /:(\d+)$/.exec(listen)?.[1] ?? "";
}

/** Every route problem: unknown carrier or account, wrong channel, a prefix not digits, a route no message can reach. */
function routeProblems(c: Config): string[] {
  const p: string[] = [];
  const channels = new Map(carrierEntries(c).map((e) => [e.key, e.channel]));
  const accounts = new Set(c.accounts.map((a) => a.id));
  c.routes.forEach((r, i) => {
    const where = `routes.${i}`;
    r.carriers.forEach((name, j) => {
      const ch = channels.get(name);
      if (ch === undefined) p.push(`${where}.carriers.${j}: unknown carrier "${name}" (no [carriers.${name}])`);
      else if (ch !== r.channel) p.push(`${where}.carriers.${j}: carrier "${name}" serves ${ch}, the route is for ${r.channel}`);
    });
    if (new Set(r.carriers).size !== r.carriers.length) p.push(`${where}.carriers: a carrier is listed twice`);
    r.prefixes.forEach((prefix, j) => {
      if (!/^\d+$/.test(prefix)) p.push(`${where}.prefixes.${j}: a prefix is digits only (got "${prefix}")`);
    });
    r.accounts.forEach((id, j) => {
      if (!accounts.has(id)) p.push(`${where}.accounts.${j}: unknown account "${id}"`);
    });
    const earlier = c.routes.slice(0, i).findIndex((e) => routeShadowedBy(r, e));
    if (earlier >= 0) p.push(`${where}: never used: routes.${earlier} matches every message it would`);
  });
  return p;
}

function inboundNumberProblems(c: Config): string[] {
  const p: string[] = [];
  const owner = new Map<string, string>();
  c.accounts.forEach((a, i) => {
    a.inbound_numbers.forEach((n, j) => {
      const where = `accounts.${i}.inbound_numbers.${j}`;
      if (!/^\+?\d+\*?$/.test(n)) p.push(`${where}: expected digits, optionally ending in * for a prefix (got "${n}")`);
      const key = n.replace(/^\+/, "");
      const other = owner.get(key);
      if (other !== undefined && other !== a.id) p.push(`${where}: "${n}" is also account "${other}"'s`);
      owner.set(key, a.id);
    });
    if (a.inbound_numbers.length > 0 && a.inbound_url === "") p.push(`accounts.${i}.inbound_numbers: set inbound_url too, or MO to these numbers has nowhere to go`);
  });
  return p;
}

export function parseConfigText(text: string, env?: Record<string, string | undefined>): Config {
  let raw: unknown;
  try {
    raw = Bun.TOML.parse(text);
  } catch (e) {
    throw new ConfigError([`TOML syntax: ${(e as Error).message}`]);
  }
  return buildConfig(raw, env);
}

export async function loadConfigFile(path: string, env?: Record<string, string | undefined>): Promise<Config> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new ConfigError([`${path}: no such file`]);
  return parseConfigText(await file.text(), env);
}

/** The defaults with nothing configured: sandbox carriers, no accounts (serve adds the demo account). */
export function defaultConfig(): Config {
  return buildConfig({});
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * The config's durations in milliseconds. The file speaks hours, days and seconds (what an operator
 * thinks in); the code speaks milliseconds, converted here and nowhere else.
 */
export interface Durations {
  validityMs: number;
  receiptWindowMs: number;
  earlyReceiptHoldMs: number;
  dedupWindowMs: number;
  retentionMs: number;
  noMmsMemoryMs: number;
  webhookMaxAgeMs: number;
  /** How long a hosted media page and an unused adaptation are kept (media_link.ttl_days). */
  mediaLinkTtlMs: number;
}

export function durations(c: Config): Durations {
  return {
    validityMs: c.delivery.validity_hours * HOUR_MS,
    receiptWindowMs: c.delivery.receipt_window_hours * HOUR_MS,
    earlyReceiptHoldMs: c.delivery.early_receipt_hold_s * 1000,
    dedupWindowMs: c.store.dedup_window_hours * HOUR_MS,
    retentionMs: c.store.retention_hours * HOUR_MS,
    noMmsMemoryMs: c.capability.remember_days * DAY_MS,
    webhookMaxAgeMs: c.webhooks.max_age_hours * HOUR_MS,
    mediaLinkTtlMs: c.media_link.ttl_days * DAY_MS,
  };
}

/** The store's options, in one place for the serving gateway and the admin command. */
export function storeOptions(c: Config, now: () => number): StoreOptions {
  const d = durations(c);
  const policy: DeliveryPolicy = {
    retryBaseMs: c.delivery.retry_base_ms,
    retryMaxMs: c.delivery.retry_max_ms,
    receiptWindowMs: d.receiptWindowMs,
    intermediateEvents: c.delivery.intermediate_events,
    inFlightPolicy: c.delivery.in_flight_policy,
    noMmsMemoryMs: d.noMmsMemoryMs,
  };
  return { now, ...policy, leaseMs: c.node.lease_ms };
}
