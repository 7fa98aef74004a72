// Driving load: wrk (C, cheap, so it leaves the CPU to what is measured) for plain throughput, and a
// raw keep-alive HTTP/1.1 client for runs that need each request's send time.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ACME_KEY } from "../../test/support/app.ts";
import { tempDir } from "./processes.ts";

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
}

/** wrk with a Lua script that gives every request a unique request_id. */
export async function wrk(url: string, o: { connections: number; seconds: number; threads?: number; lua?: string }): Promise<WrkResult> {
  const args = ["wrk", `-t${o.threads ?? Math.min(2, o.connections)}`, `-c${o.connections}`, `-d${o.seconds}s`, "--latency"];
  if (o.lua) args.push("-s", o.lua);
  args.push(url);
  const p = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString();
  if (p.exitCode !== 0) throw new Error(`wrk failed: ${p.stderr.toString()}`);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? "NaN");
  const ms = (label: string) => {
    const m = new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: ms("50"),
    p99: ms("99"),
    requests: num(/(\d+) requests in/),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** A wrk script: POST the body with a request_id unique across threads and runs. */
export function sendScript(path: string, headers: Record<string, string>, body: Record<string, unknown>): string {
  const file = join(tempDir(), "send.lua");
  const json = JSON.stringify({ ...body, request_id: "RID" });
  const lua = `
local counter = 0
local prefix = ""
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) prefix = tostring(tid) .. "-" .. tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9)) .. "-" end
wrk.method = "POST"
wrk.path = ${JSON.stringify(path)}
${Object.entries({ "content-type": "application/json", ...headers })
  .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
  .join("\n")}
local template = ${JSON.stringify(json)}
function request()
  counter = counter + 1
  local body = string.gsub(template, "RID", prefix .. counter, 1)
  return wrk.format(nil, nil, nil, body)
end
`;
  writeFileSync(file, lua);
  return file;
}

export const nowMs = () => performance.timeOrigin + performance.now();

/** One keep-alive HTTP/1.1 connection on a raw socket: one request at a time, Content-Length or chunked answers. */
class RawConn {
  private buf = Buffer.alloc(0);
  private waiting: ((status: number) => void) | null = null;
  private failed: ((e: Error) => void) | null = null;
  private constructor(private socket: import("bun").Socket<undefined>) {}

  static async open(host: string, port: number): Promise<RawConn> {
    let conn!: RawConn;
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => conn.onData(chunk),
        close: () => conn?.failed?.(new Error("connection closed")),
        error: (_s, e) => conn?.failed?.(e),
      },
    });
    socket.setNoDelay?.(true);
    conn = new RawConn(socket);
    return conn;
  }

  request(bytes: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
      this.socket.write(bytes);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    for (;;) {
      const head = this.buf.indexOf("\r\n\r\n");
      if (head < 0) return;
      const headers = this.buf.toString("latin1", 0, head).toLowerCase();
      const status = Number(headers.slice(9, 12));
      const cl = /content-length:\s*(\d+)/.exec(headers);
      let end: number;
      if (cl) {
        end = head + 4 + Number(cl[1]);
        if (this.buf.length < end) return;
      } else if (headers.includes("transfer-encoding: chunked")) {
        const z = this.buf.indexOf("\r\n0\r\n\r\n", head);
        if (z < 0) return;
        end = z + 7;
      } else {
        end = head + 4;
      }
      this.buf = this.buf.subarray(end);
      const w = this.waiting;
      this.waiting = null;
      w?.(status);
    }
  }

  close(): void {
    this.failed = null;
    this.socket.end();
  }
}

export interface LoadResult {
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Send time of request i (ms, performance.timeOrigin-based); NaN if not sent. */
  sendTimes: Float64Array;
  /** Seconds from the first send to the last answer. */
  elapsed: number;
  answerLatencies: number[];
}

/**
 * Sends `n` requests over `connections` keep-alive connections, paced at `rate` per second if given,
 * and stops at `n` or at `deadlineS`, whichever comes first. `request(i)` gives the raw HTTP/1.1 bytes.
 */
export async function rawLoad(o: { host?: string; port: number; n: number; connections: number; rate?: number; deadlineS: number; request: (i: number) => string }): Promise<LoadResult> {
  const conns = await Promise.all(Array.from({ length: o.connections }, () => RawConn.open(o.host ?? "127.0.0.1", o.port)));
  const sendTimes = new Float64Array(o.n).fill(NaN);
  const answerLatencies: number[] = [];
  let next = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const t0 = nowMs();
  const deadline = t0 + o.deadlineS * 1000;
  let lastAnswer = t0;
  const worker = async (c: RawConn) => {
    for (;;) {
      const i = next++;
      if (i >= o.n) return;
      if (o.rate) {
        const at = t0 + (i * 1000) / o.rate;
        const wait = at - nowMs();
        if (wait > 1) await Bun.sleep(wait);
      }
      const s = nowMs();
      if (s > deadline) return;
      sendTimes[i] = s;
      try {
        const status = await c.request(o.request(i));
        if (status >= 200 && status < 300) ok++;
        else non2xx++;
      } catch {
        errors++;
        return;
      }
      lastAnswer = nowMs();
      answerLatencies.push(lastAnswer - s);
    }
  };
  await Promise.all(conns.map(worker));
  for (const c of conns) c.close();
  return { sent: Math.min(next, o.n), ok, non2xx, errors, sendTimes, elapsed: (lastAnswer - t0) / 1000, answerLatencies };
}

function rawPost(path: string, headers: Record<string, string>, body: string): string {
  const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A Channel API send (/mms or /sms) as the acme tenant, as raw HTTP/1.1 bytes. */
export function apiPost(path: "/mms" | "/sms", body: object): string {
  return rawPost(path, { "Chan-Api-Key": ACME_KEY }, JSON.stringify(body));
}

export function rawGet(pathAndQuery: string): string {
  return `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
}

/** The HTTP ceiling for the raw client: the bare server, the same client, the same connections. */
export async function rawCeiling(url: string, n: number, connections: number, request: (i: number) => string): Promise<number> {
  const port = Number(new URL(url).port);
  const r = await rawLoad({ port, n, connections, deadlineS: 30, request });
  return r.ok / r.elapsed;
}
