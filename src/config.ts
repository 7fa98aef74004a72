// The configuration: one TOML file, `${NAME}` replaced from the environment, validated by one TypeBox
// schema. Every default lives here and nowhere else.
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType } from "@sinclair/typebox/value";
import { mm7Defaults, resolveMm7Settings, type Mm7Settings } from "../adapters/mm7/index.ts";
import { resolveSettings as resolveSmppSettings, smppDefaults, type SmppSettings } from "../adapters/smpp/index.ts";

const Str = (d: string, description?: string) => T.String({ default: d, description });
const Int = (d: number, min = 0, max = Number.MAX_SAFE_INTEGER) => T.Integer({ default: d, minimum: min, maximum: max });
const Bool = (d: boolean) => T.Boolean({ default: d });
const Section = <P extends Record<string, TSchema>>(props: P) => T.Object(props, { additionalProperties: false, default: {} });

const Account = T.Object(
  {
    id: T.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$" }),
    headers: T.Record(T.String(), T.String({ minLength: 1 }), { minProperties: 1 }),
    callback_secret: T.String({ minLength: 1 }),
    inbound_url: Str(""),
    enabled: Bool(true),
    /** Senders this account may use; empty = any. A sender outside the list is refused with 403. */
    allowed_senders: T.Array(T.String(), { default: [] }),
    /** Requests per second for this account; 0 = unlimited. Over it → 429. */
    rate_limit: Int(0),
  },
  { additionalProperties: false },
);

/**
 * The carrier sections: the adapters own their settings and defaults (one place for each fact); the
 * schema is derived from those defaults so every key is type-checked, defaulted and unknown keys named.
 */
function fromDefaults(defaults: object, omit: string[] = []): Record<string, TSchema> {
  const out: Record<string, TSchema> = {};
  for (const [k, d] of Object.entries(defaults)) {
    if (omit.includes(k)) continue;
    if (typeof d === "string") out[k] = T.String({ default: d });
    else if (typeof d === "number") out[k] = T.Number({ default: d, minimum: 0 });
    else if (typeof d === "boolean") out[k] = T.Boolean({ default: d });
    else if (Array.isArray(d)) out[k] = T.Array(T.Union([T.String(), T.Number()]), { default: d });
  }
  return out;
}
const sandboxKeys = {
  /** Sandbox: milliseconds between the submit and its delivery report. */
  sandbox_report_delay_ms: Int(200),
};

const Mms = Section({
  // The MMSC's inbound credentials are [inbound.mm7]'s, not repeated here.
  ...fromDefaults(mm7Defaults, ["inbound_username", "inbound_password"]),
  kind: T.Union([T.Literal("mm7"), T.Literal("sandbox")], { default: "sandbox" }),
  name: Str("mms"),
  /** Submits in flight to this carrier at once (the dispatcher's limit). */
  concurrency: Int(32, 1, 4096),
  ...sandboxKeys,
});

const Sms = Section({
  ...fromDefaults(smppDefaults),
  kind: T.Union([T.Literal("smpp"), T.Literal("sandbox")], { default: "sandbox" }),
  name: Str("sms"),
  /** Submits in flight at once (the dispatcher's limit; the SMPP window bounds each bind too). */
  concurrency: Int(256, 1, 100000),
  ...sandboxKeys,
});

/** The adapter's own view of its section: the section less the gateway's keys. */
export function mm7Settings(c: Config): Mm7Settings {
  const { kind: _k, sandbox_report_delay_ms: _s, ...rest } = c.carriers.mms;
  return resolveMm7Settings({ ...rest, inbound_username: c.inbound.mm7.username, inbound_password: c.inbound.mm7.password });
}

export function smppSettings(c: Config): SmppSettings {
  const { kind: _k, name: _n, concurrency: _c, sandbox_report_delay_ms: _s, ...rest } = c.carriers.sms;
  return resolveSmppSettings(rest);
}

export const ConfigSchema = T.Object(
  {
    server: Section({
      listen: Str("127.0.0.1:8080"),
      tls_cert: Str(""),
      tls_key: Str(""),
      /** Whole request body limit; over it → 413. */
      max_body_bytes: Int(262144, 1024),
      /** Logs every raw Channel API request body (secrets redacted): for capturing Bloomreach's exact spellings. */
      log_request_bodies: Bool(false),
      /** Graceful shutdown: how long in-flight submits and the outbox get before the process exits. */
      shutdown_deadline_ms: Int(10000),
      /** Retry-After seconds sent with 429 and 503. */
      retry_after_s: Int(5, 1),
    }),
    store: Section({
      path: Str("./data/gateway.db"),
      /** How long a request_id is remembered for deduplication. */
      dedup_window_hours: Int(168, 1),
      /** Finished messages and their events are kept this long (admin lookups), then purged. */
      retention_hours: Int(720, 1),
    }),
    accounts: T.Array(Account, { default: [] }),
    limits: Section({
      subject_max_chars: Int(80, 1),
      media_max_items: Int(5, 1, 50),
      custom_data_max_bytes: Int(16384, 0),
      metadata_max_bytes: Int(16384, 0),
      request_id_max_chars: Int(256, 1),
      text_max_chars: Int(5000, 1),
      /** Messages waiting for a carrier above which new sends get 429. */
      queue_high_water: Int(200000, 1),
    }),
    delivery: Section({
      /** How long a message may be retried before it is failed. */
      validity_hours: Int(24, 1),
      /** A submitted message with no final report after this becomes `sent` (final). */
      receipt_window_hours: Int(48, 1),
      /** A submit was sent but its answer never stored (crash): never resend (default) or resend. */
      in_flight_policy: T.Union([T.Literal("at-most-once"), T.Literal("at-least-once")], { default: "at-most-once" }),
      retry_base_ms: Int(2000, 1),
      retry_max_ms: Int(600000, 1),
      /** A receipt whose carrier id is not known yet is held this long (it can beat the submit answer). */
      early_receipt_hold_s: Int(600, 1),
      /** Also report `sent` when the carrier accepts the message (before the final report). */
      intermediate_events: Bool(false),
      /** Accept and queue, but submit nothing (a carrier maintenance window); the queue drains when false again. */
      paused: Bool(false),
      /** Messages claimed per dispatcher round. */
      claim_batch: Int(256, 1, 10000),
    }),
    webhooks: Section({
      bearer_prefix: Bool(false),
      batch_max_events: Int(100, 1, 10000),
      batch_max_wait_ms: Int(50, 0),
      max_age_hours: Int(24, 1),
      timeout_ms: Int(10000, 100),
      concurrency: Int(16, 1, 1024),
      retry_base_ms: Int(1000, 1),
      retry_max_ms: Int(300000, 1),
    }),
    egress: Section({
      allow: T.Array(T.String(), { default: [] }),
    }),
    media: Section({
      max_bytes: Int(1048576, 1024),
      timeout_ms: Int(15000, 100),
      max_redirects: Int(3, 0, 20),
      cache_entries: Int(1000, 0),
    }),
    carriers: Section({ mms: Mms, sms: Sms }),
    inbound: Section({
      mm7: Section({
        path: Str("/mm7"),
        username: Str(""),
        password: Str(""),
      }),
    }),
    admin: Section({
      /** Bearer token for the admin API and the status page; empty disables both over HTTP. */
      token: Str(""),
    }),
    log: Section({
      level: T.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => T.Literal(l)), {
        default: "info",
      }),
    }),
  },
  { additionalProperties: false },
);

type Schema = Static<typeof ConfigSchema>;
type MmsSection = Schema["carriers"]["mms"] & Omit<Mm7Settings, "inbound_username" | "inbound_password">;
type SmsSection = Schema["carriers"]["sms"] & SmppSettings;
/** The schema's static type, with the carrier sections' adapter keys (derived at run time) spelled out. */
export type Config = Omit<Schema, "carriers"> & { carriers: { mms: MmsSection; sms: SmsSection } };
export type AccountConfig = Config["accounts"][number];

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
  const substituted = substituteEnv(raw ?? {}, env, "", problems);
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(substituted));
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    if (e.type === ValueErrorType.ObjectAdditionalProperties) {
      problems.push(`${keyName(e.path)}: unknown key`);
      continue;
    }
    problems.push(`${keyName(e.path)}: ${e.message}${e.value !== undefined && typeof e.value !== "object" ? ` (got ${JSON.stringify(e.value)})` : ""}`);
  }
  const config = withDefaults as Config;
  if (problems.length === 0) problems.push(...semanticProblems(config));
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return config;
}

function semanticProblems(c: Config): string[] {
  const p: string[] = [];
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:]+):\d{1,5}$/.test(c.server.listen)) p.push(`server.listen: expected HOST:PORT (got "${c.server.listen}")`);
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
  if (c.carriers.mms.kind === "mm7" && !/^https?:\/\//.test(c.carriers.mms.url)) p.push("carriers.mms.url: required for kind = \"mm7\" (an http(s) URL)");
  for (const [section, check] of [
    ["carriers.mms", () => mm7Settings(c)],
    ["carriers.sms", () => smppSettings(c)],
  ] as const) {
    try {
      check();
    } catch (e) {
      p.push(`${section}: ${(e as Error).message.replace(/^(mm7: |carriers\.sms\.)/, "")}`);
    }
  }
  if (!c.inbound.mm7.path.startsWith("/")) p.push("inbound.mm7.path: must start with /");
  for (const [i, cidr] of c.egress.allow.entries()) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(cidr)) p.push(`egress.allow.${i}: expected a CIDR like 127.0.0.0/8 (got "${cidr}")`);
  }
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
