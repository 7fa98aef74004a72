// The configuration's one TypeBox schema: every key, its type, default and meaning (example-config prints
// it). The carrier sections derive from the adapters' own defaults.
import { Type as T, type Static, type TSchema } from "@sinclair/typebox";
import { mm7Defaults, type Mm7Settings } from "../adapters/mm7/index.ts";
import { smppDefaults, type SmppSettings } from "../adapters/smpp/index.ts";
import type { Channel } from "./domain/message.ts";

const Str = (d: string, description?: string) => T.String({ default: d, description });
const Int = (d: number, min = 0, max = Number.MAX_SAFE_INTEGER) => T.Integer({ default: d, minimum: min, maximum: max });
const Bool = (d: boolean) => T.Boolean({ default: d });
/** The key's meaning, kept in the schema so `example-config` can print it beside the default. */
const Doc = <S extends TSchema>(description: string, schema: S): S => ({ ...schema, description });
const Section = <P extends Record<string, TSchema>>(props: P) => T.Object(props, { additionalProperties: false, default: {} });

const Account = T.Object(
  {
    id: Doc("The account's name in logs, metrics and the admin API.", T.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$" })),
    headers: Doc("The Chan-* headers Bloomreach sends for this account, all of which must match.", T.Record(T.String(), T.String({ minLength: 1 }), { minProperties: 1 })),
    callback_secret: Doc("HS256 secret the webhook JWT is signed with (the integration's callback secret).", T.String({ minLength: 1 })),
    inbound_url: Doc("Where mobile-originated messages are posted; empty = MO is only logged.", Str("")),
    enabled: Doc("A disabled account gets 403.", Bool(true)),
    allowed_senders: Doc("Senders this account may use; empty = any. A sender outside the list is refused with 403.", T.Array(T.String(), { default: [] })),
    rate_limit: Doc("Requests per second for this account; 0 = unlimited. Over it → 429.", Int(0)),
    inbound_numbers: Doc(
      'MO sent to these numbers goes to this account ("1888555*" = every number starting 1888555; an exact number beats a prefix, a longer prefix a shorter). MO to a number no account owns goes to the first account with an inbound_url.',
      T.Array(T.String(), { default: [] }),
    ),
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
  sandbox_report_delay_ms: Doc("Sandbox: milliseconds between the submit and its delivery report.", Int(200)),
};

const Mms = Section({
  // The MMSC's inbound credentials are [inbound.mm7]'s, not repeated here.
  ...fromDefaults(mm7Defaults, ["inbound_username", "inbound_password"]),
  kind: Doc("mm7 = a real MMSC; sandbox = the embedded test carrier.", T.Union([T.Literal("mm7"), T.Literal("sandbox")], { default: "sandbox" })),
  name: Str("mms", "The carrier's name in logs, metrics and the database."),
  concurrency: Doc("Submits in flight to this carrier at once (the dispatcher's limit).", Int(32, 1, 4096)),
  adapt_media: Doc("Resize and re-encode images so the whole SubmitReq fits max_message_bytes; false = media passed through untouched.", Bool(true)),
  image_max_edge_px: Doc("Longest side of an image after adaptation, in pixels (larger images are scaled down even when they fit).", Int(1280, 64, 16384)),
  ...sandboxKeys,
});

const Sms = Section({
  ...fromDefaults(smppDefaults),
  kind: Doc("smpp = a real SMSC; sandbox = the embedded test carrier.", T.Union([T.Literal("smpp"), T.Literal("sandbox")], { default: "sandbox" })),
  name: Str("sms", "The carrier's name in logs, metrics and the database."),
  concurrency: Doc("Submits in flight at once (the dispatcher's limit; the SMPP window bounds each bind too).", Int(256, 1, 100000)),
  ...sandboxKeys,
});

/** A carrier beside `mms` and `sms`: the same keys, and the channel it serves (implied by kind mm7/smpp). */
const channelKey = Doc('"mms" or "sms": implied by kind "mm7" / "smpp"; required for kind "sandbox".', T.Union([T.Literal("mms"), T.Literal("sms")]));
export function namedCarrierSchema(key: string, channel: Channel) {
  const base = channel === "mms" ? Mms : Sms;
  return Section({ ...base.properties, name: Str(key), channel: channelKey });
}

const Route = T.Object(
  {
    channel: Doc('"mms" or "sms".', T.Union([T.Literal("mms"), T.Literal("sms")])),
    prefixes: Doc('Recipient prefixes (digits; a leading "+" or "00" of the recipient is stripped first); [] = any.', T.Array(T.String(), { default: [] })),
    accounts: Doc("Account ids; [] = any.", T.Array(T.String(), { default: [] })),
    carriers: Doc("Carrier names in order of preference: the next one takes over while one is down.", T.Array(T.String({ minLength: 1 }), { minItems: 1 })),
    retry_elsewhere: Doc(
      'Definite failures after which the message may be submitted to the next carrier: "temporary" (the carrier answered "not now") and/or "permanent" (it refused the message). A submit whose answer never came stays with its carrier whatever this says (delivery.in_flight_policy).',
      T.Array(T.Union([T.Literal("temporary"), T.Literal("permanent")]), { default: ["temporary"] }),
    ),
  },
  { additionalProperties: false },
);

export const ConfigSchema = T.Object(
  {
    server: Section({
      listen: Str("127.0.0.1:8080", "HOST:PORT the HTTP API, /mm7, /metrics, /status and /admin listen on."),
      tls_cert: Str("", "PEM certificate (chain) file: set with tls_key to serve HTTPS; re-read on SIGHUP."),
      tls_key: Str("", "PEM private key file for tls_cert."),
      max_body_bytes: Doc("Whole request body limit; over it → 413.", Int(262144, 1024)),
      auth_failures_per_minute: Doc(
        "Failed authentications (Channel API keys, /mm7 passwords) one client may make per minute before it gets 429 for the rest of that minute (against guessing); a client is an IPv4 address or an IPv6 /64; 0 = no limit. Bloomreach calls from few addresses: a misconfigured integration blocks its address too.",
        Int(30, 0),
      ),
      log_request_bodies: Doc("Logs every raw Channel API request body (secrets redacted): for capturing Bloomreach's exact spellings.", Bool(false)),
      shutdown_deadline_ms: Doc("Graceful shutdown: how long in-flight submits and the outbox get before the process exits.", Int(10000)),
      retry_after_s: Doc("Retry-After seconds sent with 429 and 503.", Int(5, 1)),
    }),
    store: Section({
      kind: Doc(
        '"sqlite" (embedded, one node) or "postgres" (any number of nodes share it).',
        T.Union([T.Literal("sqlite"), T.Literal("postgres")], { default: "sqlite" }),
      ),
      path: Str("./data/gateway.db", "sqlite: the database file (WAL mode; keep it on a local disk)."),
      url: Str("", 'postgres: "postgres://user:password@host:5432/dbname" (${ENV} welcome).'),
      dedup_window_hours: Doc("How long a request_id is remembered for deduplication.", Int(168, 1)),
      retention_hours: Doc("Finished messages and their events are kept this long (admin lookups), then purged.", Int(720, 1)),
    }),
    node: Section({
      id: Str("", "Unique per node sharing one postgres store; default: hostname:port."),
      lease_ms: Doc(
        "postgres: how long a node's claims, webhook events and SMPP bind slots stay its own without renewal (renewed every third of it); after a node dies, the others take its work and binds over this long after its last renewal.",
        Int(10000, 300, 600000),
      ),
    }),
    accounts: Doc("One [[accounts]] table per Bloomreach integration.", T.Array(Account, { default: [] })),
    limits: Section({
      subject_max_chars: Int(80, 1),
      media_max_items: Int(5, 1, 50),
      custom_data_max_bytes: Int(16384, 0),
      metadata_max_bytes: Int(16384, 0),
      request_id_max_chars: Int(256, 1),
      text_max_chars: Int(5000, 1),
      queue_high_water: Doc("Messages waiting for a carrier above which new sends get 429.", Int(200000, 1)),
    }),
    delivery: Section({
      validity_hours: Doc("How long a message may be retried before it is failed.", Int(24, 1)),
      receipt_window_hours: Doc("A submitted message with no final report after this becomes `sent` (final).", Int(48, 1)),
      in_flight_policy: Doc("A submit was sent but its answer never stored (crash): never resend (default) or resend.", T.Union([T.Literal("at-most-once"), T.Literal("at-least-once")], { default: "at-most-once" })),
      retry_base_ms: Int(2000, 1),
      retry_max_ms: Int(600000, 1),
      early_receipt_hold_s: Doc("A receipt whose carrier id is not known yet is held this long (it can beat the submit answer).", Int(600, 1)),
      intermediate_events: Doc("Also report `sent` when the carrier accepts the message (before the final report).", Bool(false)),
      paused: Doc("Accept and queue, but submit nothing (a carrier maintenance window); the queue drains when false again.", Bool(false)),
      claim_batch: Doc("Messages claimed per dispatcher round.", Int(256, 1, 10000)),
      failover_after_errors: Doc("Consecutive temporary or unanswered submits after which a carrier is skipped for the next one in its route.", Int(3, 1)),
      failover_probe_ms: Doc("A carrier that is down or skipped is tried with one message this often, so that traffic fails back once it recovers.", Int(10000, 100)),
    }),
    webhooks: Section({
      bearer_prefix: Doc("Send the JWT as `Bearer <jwt>` instead of the bare token.", Bool(false)),
      batch_max_events: Int(100, 1, 10000),
      batch_max_wait_ms: Int(50, 0),
      max_age_hours: Int(24, 1),
      timeout_ms: Int(10000, 100),
      concurrency: Int(16, 1, 1024),
      retry_base_ms: Int(1000, 1),
      retry_max_ms: Int(300000, 1),
    }),
    egress: Section({
      allow: Doc("CIDRs that callback and media URLs may reach although private (loopback, RFC 1918); public addresses are always allowed.", T.Array(T.String(), { default: [] })),
    }),
    media: Section({
      max_bytes: Doc("Largest media source fetched (memory guard, not the carrier's limit: images are adapted to that).", Int(16 * 1048576, 1024)),
      timeout_ms: Int(15000, 100),
      max_redirects: Int(3, 0, 20),
      cache_entries: Int(1000, 0),
      ffmpeg: Doc('Audio/video converter: a name looked up on PATH or a path; "" = none (audio and video then pass through only when they fit and are a type MMS takes).', Str("ffmpeg")),
      convert_timeout_ms: Doc("Longest ffmpeg may run to convert one part, summed over the probe and every encode (waiting for a free ffmpeg does not count); it is killed at it.", Int(60000, 1000)),
    }),
    carriers: Section({ mms: Mms, sms: Sms }),
    routes: Doc("[[routes]]: which carriers take a message, by channel, recipient prefix and account; first match wins, no match → carriers.mms / carriers.sms.", T.Array(Route, { default: [] })),
    media_link: Section({
      base_url: Doc("Public base URL of the hosted media page (e.g. https://m.example.com); set → a fallback SMS of an MMS with media ends with a link to it.", Str("")),
      ttl_days: Doc("How long a hosted page and its media are kept.", Int(365, 1, 3650)),
    }),
    capability: Section({
      remember_days: Doc("A number refused as \"cannot take MMS\" goes straight to the SMS fallback for this long; 0 = off.", Int(30, 0, 3650)),
    }),
    inbound: Section({
      listen: Str(
        "",
        "HOST:PORT of a second, plain-HTTP listener for the carrier and monitoring side: /mm7, /metrics and /readyz are then served there and no longer on server.listen (e.g. an address only the MMSC and Prometheus reach; /healthz answers on both). Empty = everything on server.listen.",
      ),
      mm7: Section({
        path: Str("/mm7", "Where the MMSC posts delivery reports and MO."),
        username: Str("", "Basic-auth user the MMSC must send. Required when any carrier has kind = \"mm7\" unless allow_unauthenticated is set."),
        password: Str("", "Basic-auth password the MMSC must send."),
        allow_unauthenticated: Doc(
          "Take reports and MO at path without credentials. Only when nothing but the MMSC can reach this port (a private listener or firewall): anyone who can post here can mark messages delivered or failed and send MO in the account's name.",
          Bool(false),
        ),
      }),
    }),
    admin: Section({
      token: Doc("Bearer token for the admin API and the status page; empty disables both over HTTP.", Str("")),
    }),
    log: Section({
      level: Doc("JSON log lines on stdout at this level and above.", T.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => T.Literal(l)), {
        default: "info",
      })),
    }),
  },
  { additionalProperties: false },
);

type Schema = Static<typeof ConfigSchema>;
export type MmsSection = Schema["carriers"]["mms"] & Omit<Mm7Settings, "inbound_username" | "inbound_password">;
export type SmsSection = Schema["carriers"]["sms"] & SmppSettings;
/** The schema's static type, with the carrier sections' adapter keys (derived at run time) spelled out. */
export type NamedCarrierSection = (MmsSection | SmsSection) & { channel: Channel };
export type Config = Omit<Schema, "carriers"> & { carriers: { mms: MmsSection; sms: SmsSection } & Record<string, MmsSection | SmsSection | NamedCarrierSection> };
export type RouteConfig = Config["routes"][number];
export type AccountConfig = Config["accounts"][number];
