// Shared pieces of the fault and abuse suite (test/chaos, test/fuzz): a seeded PRNG, the full/bounded
// switch, summary lines, a switchable HTTP front that can refuse, hang or answer garbage in front of a
// real peer, carrier peers that report the way real ones do (retrying until acknowledged), and the
// compiled gateway configured against them. Everything listens on and connects to 127.0.0.1 only.
import { Database } from "bun:sqlite";
import { appendFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { configFor, startBinary, type Running } from "../support/binary.ts";
import { ACME_KEY, deepMerge, tempDir as baseTempDir, testConfigDoc as baseConfigDoc } from "../support/config-doc.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";
import { startSmsc, type Smsc, type SmscOptions } from "../peers/smpp-sim.ts";

export { ACME_KEY, ACME_SECRET, deepMerge } from "../support/config-doc.ts";

export function tempDir(prefix = "gw-chaos-"): string {
  return baseTempDir(prefix);
}

/** The test gateway's document, narrowed for this suite: egress to 127.0.0.1 only, warnings logged. */
export function testConfigDoc(dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return baseConfigDoc(dir, deepMerge({ egress: { allow: ["127.0.0.1/32"] }, log: { level: "warn" } }, overrides));
}

/** CHAOS_FULL=1 (make test-chaos) runs the long version; plain `bun test` runs a small bounded one. */
export const FULL = process.env.CHAOS_FULL === "1";
/** Seed for every PRNG in the suite; CHAOS_SEED=n reproduces a run. */
export const SEED = Number(process.env.CHAOS_SEED ?? 20240607);

export { seeded as rng } from "../support/random.ts";
export const pickOf = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const intIn = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const summaryFile = resolve(import.meta.dir, "../../.tmp/chaos-summary.log");
/** One line per scenario, printed and appended to .tmp/chaos-summary.log (docs/reliability.md quotes them). */
export function summary(line: string): void {
  const full = `${line} mode=${FULL ? "full" : "subset"} seed=${SEED}`;
  console.log(full);
  try {
    mkdirSync(resolve(summaryFile, ".."), { recursive: true });
    appendFileSync(summaryFile, `${new Date().toISOString()} ${full}\n`);
  } catch {
    // the summary file is a convenience; the console line is the record
  }
}

export async function until<T>(what: string, check: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 30000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

// ---- a switchable HTTP front --------------------------------------------------------------------

export type FrontMode =
  | { kind: "pass" }
  | { kind: "down" } // the port is closed: connection refused
  | { kind: "hang" } // accepts, never answers (until the mode changes)
  | { kind: "swallow" } // passes the request on (the peer takes it), holds the answer (until the mode changes)
  | { kind: "status"; status: number; body?: string; contentType?: string }
  | { kind: "slow"; ms: number };

export interface Front {
  url: string;
  port: number;
  /** Requests that reached the front while it was listening. */
  seen: number;
  passed: number;
  /** Requests passed on whose answer was then held back ("swallow"). */
  swallowed: number;
  set(mode: FrontMode): void;
  readonly mode: FrontMode;
  stop(): void;
}

/**
 * An HTTP server on a fixed loopback port in front of `target`: passes requests through, or refuses
 * connections (server stopped), hangs, answers a fixed status/body, or is slow. Used for the MMSC and
 * the webhook sink, so neither needs to know about faults.
 */
export function startFront(target: string, port = 0): Front {
  let mode: FrontMode = { kind: "pass" };
  let server: ReturnType<typeof Bun.serve> | null = null;
  const waiting = new Set<() => void>();
  const front: Front = {
    url: "",
    port,
    seen: 0,
    passed: 0,
    swallowed: 0,
    get mode() {
      return mode;
    },
    set(m) {
      mode = m;
      for (const w of waiting) w();
      waiting.clear();
      if (m.kind === "down" && server) {
        server.stop(true);
        server = null;
      } else if (m.kind !== "down" && !server) listen();
    },
    stop() {
      for (const w of waiting) w();
      server?.stop(true);
      server = null;
    },
  };
  const listen = () => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: front.port,
      idleTimeout: 0,
      async fetch(req) {
        front.seen++;
        const body = await req.arrayBuffer();
        for (;;) {
          const m = mode;
          if (m.kind === "hang") {
            // Released when the mode changes; the client gave up long ago, so nothing is passed on.
            await new Promise<void>((r) => waiting.add(r));
            return new Response("released", { status: 503 });
          }
          if (m.kind === "status") return new Response(m.body ?? "", { status: m.status, headers: { "content-type": m.contentType ?? "text/plain" } });
          if (m.kind === "slow") await Bun.sleep(m.ms);
          break;
        }
        const u = new URL(req.url);
        const headers = new Headers(req.headers);
        headers.delete("host");
        headers.delete("content-length");
        front.passed++;
        const swallow = mode.kind === "swallow";
        const r = await fetch(`${target}${u.pathname}${u.search}`, { method: req.method, headers, body: req.method === "GET" ? undefined : body });
        const answer = await r.arrayBuffer();
        if (swallow) {
          // The peer took it; its answer is lost on the way back.
          front.swallowed++;
          await new Promise<void>((r) => waiting.add(r));
          return new Response("released", { status: 503 });
        }
        return new Response(answer, { status: r.status, headers: r.headers });
      },
    });
    front.port = server.port!;
    front.url = `http://127.0.0.1:${front.port}`;
  };
  listen();
  return front;
}

// ---- carrier peers that report like real ones ---------------------------------------------------

export const MM7_IN = { username: "mmsc", password: "in-secret" };

export interface Carriers {
  mmsc: MmscStub;
  smsc: Smsc;
  smscOptions: SmscOptions;
  /** The URL the gateway should use for the MMSC (the stub itself, or a Front before it). */
  mmscUrl: string;
  /** Recipient (digits) → MMSC message ids issued for it (one per SubmitReq the MMSC accepted). */
  mmsByTo: Map<string, string[]>;
  /** Reports: posted and acknowledged (200), and attempts that failed (gateway down, 5xx). */
  stats: { mmReportsAcked: number; mmReportAttemptsFailed: number; smsReceiptsAcked: number; smsReceiptAttemptsFailed: number };
  /** Reports still waiting to be acknowledged. */
  pendingReports(): number;
  stop(): Promise<void>;
}

export interface CarrierOptions {
  /** Where the gateway is (a getter: the port stays, the process changes). */
  gatewayUrl: () => string;
  /**
   * MMSC answer for a recipient; default ok. `77` endings say "cannot take MMS" (2002 → fallback).
   * "hang": received, never answered (until the stub stops) — a submit left on the wire.
   */
  mmsScenario?: (to: string) => "ok" | "fallback" | "hang";
  reportDelayMs?: number;
  smsc?: SmscOptions;
}

/**
 * MMSC stub + SMSC simulator, with the reporting done here rather than by the simulators: each
 * accepted submit gets its report after a delay, and the report is sent again until the gateway
 * acknowledges it (MM7: HTTP 200 with status 1000; SMPP: deliver_sm_resp 0), as a real MMSC/SMSC
 * does. The simulator's own `sendReceipts` is fire-and-forget and loses receipts whose bind died.
 */
export async function startCarriers(o: CarrierOptions): Promise<Carriers> {
  const mmsByTo = new Map<string, string[]>();
  const delay = o.reportDelayMs ?? 150;
  const stats = { mmReportsAcked: 0, mmReportAttemptsFailed: 0, smsReceiptsAcked: 0, smsReceiptAttemptsFailed: 0 };
  type Report = { kind: "mm7" | "smpp"; due: number; send: () => Promise<boolean>; busy: boolean };
  const reports = new Set<Report>();
  let n = 0;
  const mmsc = await startMmscStub({
    username: "vasp",
    password: "secret",
    scenario: (req) => {
      const to = (req.to[0]?.value ?? "").replace(/\D/g, "");
      const scenario = o.mmsScenario?.(to) ?? (to.endsWith("77") ? "fallback" : "ok");
      if (scenario === "hang") return { kind: "hang" };
      if (scenario === "fallback") return { kind: "status", code: 2002, text: "Address Error" };
      const messageId = `mmsc-${++n}`;
      mmsByTo.set(to, [...(mmsByTo.get(to) ?? []), messageId]);
      reports.add({
        kind: "mm7",
        due: Date.now() + delay,
        busy: false,
        send: async () => {
          const r = await mmsc.sendDeliveryReport(`${o.gatewayUrl()}/mm7`, { messageId, status: "Retrieved", ...MM7_IN });
          return r.status === 200 && r.body.includes("1000");
        },
      });
      return { kind: "ok", messageId };
    },
  });
  const smscOptions: SmscOptions = { idBase: "dec", ...o.smsc, sendReceipts: false };
  const smsc = await startSmsc(smscOptions);
  let seenSubmits = 0;
  let stopped = false;

  const loop = (async () => {
    while (!stopped) {
      // New accepted submit_sm → one receipt each.
      for (; seenSubmits < smsc.submits.length; seenSubmits++) {
        const s = smsc.submits[seenSubmits]!;
        if (!s.receiptId || !(s.registeredDelivery & 0x03)) continue;
        const id = s.receiptId;
        reports.add({
          kind: "smpp",
          due: Date.now() + delay,
          busy: false,
          send: async () => {
            // A receipt on a bind that dies is never answered: give up on this attempt and send again.
            const status = await Promise.race([smsc.sendReceipt({ id, stat: "DELIVRD" }), Bun.sleep(3000).then(() => -1)]);
            return status === 0;
          },
        });
      }
      const now = Date.now();
      for (const r of reports) {
        if (r.busy || r.due > now) continue;
        r.busy = true;
        const isMm7 = r.kind === "mm7";
        void r
          .send()
          .catch(() => false)
          .then((ok) => {
            r.busy = false;
            if (ok) {
              reports.delete(r);
              if (isMm7) stats.mmReportsAcked++;
              else stats.smsReceiptsAcked++;
            } else {
              if (isMm7) stats.mmReportAttemptsFailed++;
              else stats.smsReceiptAttemptsFailed++;
              r.due = Date.now() + 200;
            }
          });
      }
      await Bun.sleep(20);
    }
  })();

  return {
    mmsc,
    smsc,
    smscOptions,
    mmscUrl: mmsc.url,
    mmsByTo,
    stats,
    pendingReports: () => reports.size,
    async stop() {
      stopped = true;
      await loop;
      await mmsc.stop();
      await smsc.stop();
    },
  };
}

// ---- the gateway under test ---------------------------------------------------------------------

/** A config document for the binary against MM7 + SMPP peers on loopback; `extra` is merged last. */
export function carrierConfigDoc(dir: string, mmscUrl: string, smscPort: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = testConfigDoc(dir, {
    log: { level: "warn" },
    egress: { allow: ["127.0.0.1/32"] },
    carriers: {
      mms: { kind: "mm7", url: mmscUrl, username: "vasp", password: "secret", vaspid: "VASP1", vasid: "VAS1", service_code: "SC1", timeout_ms: 2000 },
      sms: {
        kind: "smpp",
        host: "127.0.0.1",
        port: smscPort,
        system_id: "gw",
        password: "pw",
        tps: 2000,
        window: 50,
        reconnect_min_ms: 100,
        reconnect_max_ms: 500,
        response_timeout_ms: 2000,
        throttle_pause_ms: 200,
      },
    },
    inbound: { mm7: { path: "/mm7", ...MM7_IN } },
  });
  return deepMerge(base, extra);
}


export async function startGateway(dir: string, doc: Record<string, unknown>, port: number): Promise<Running> {
  return startBinary(configFor(dir, doc), port);
}

export async function stopGateway(gw: Running | null): Promise<void> {
  if (!gw || gw.proc.exitCode !== null || gw.proc.signalCode) return;
  gw.proc.kill("SIGTERM");
  const t = setTimeout(() => gw.proc.kill("SIGKILL"), 15000);
  await gw.proc.exited;
  clearTimeout(t);
}

export const auth = { "Chan-Api-Key": ACME_KEY };

/** POST JSON with a deadline; null when there was no HTTP answer (refused, reset, timeout). */
export async function postJson(
  url: string,
  body: unknown,
  o: { headers?: Record<string, string>; timeoutMs?: number; contentType?: string } = {},
): Promise<{ status: number; text: string; json: any; headers: Headers } | null> {
  try {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": o.contentType ?? "application/json", ...auth, ...o.headers },
      body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(o.timeoutMs ?? 10000),
    });
    const text = await r.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: r.status, text, json, headers: r.headers };
  } catch {
    return null;
  }
}

/** Read-only view of the gateway's database (WAL: safe beside the running process). */
export function readDb<T>(dir: string, fn: (db: Database) => T): T {
  const db = new Database(join(dir, "gateway.db"), { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export const FINAL = new Set(["delivered", "failed", "sent"]);

/** Notes the id a request_id was acknowledged with; another id for the same request_id is a broken promise. */
export function noteAcknowledged(acked: Map<string, string>, requestId: string, id: string): void {
  const prior = acked.get(requestId);
  if (prior && prior !== id) throw new Error(`request ${requestId} acknowledged with two ids: ${prior}, ${id}`);
  acked.set(requestId, id);
}

export interface Sent {
  path: string;
  body: Record<string, unknown>;
}

/** What the load loops of the kill -9 rounds keep: every acknowledged id, what is to be sent again, why. */
export class Offers<S extends Sent = Sent> {
  readonly acked = new Map<string, string>();
  readonly retry: S[] = [];
  noAnswer = 0;
  non200 = 0;

  /** Sends `req` once, as Bloomreach does: a 200 is noted; no answer (the process died under it) or 503/429 → sent again later. */
  async offer(base: string, req: S): Promise<string | null> {
    const a = await postJson(`${base}${req.path}`, req.body, { timeoutMs: 10000 });
    if (a?.status === 200) {
      noteAcknowledged(this.acked, req.body.request_id as string, a.json.id);
      await Bun.sleep(5);
      return a.json.id as string;
    }
    if (a === null) this.noAnswer++;
    else this.non200++;
    this.retry.push(req);
    await Bun.sleep(30);
    return null;
  }
}
