// A real webhook sink on loopback: verifies the JWT (HS256 signature and the iat window, as Bloomreach
// does) and records every event; its answer can be changed while a test runs.
import { jwtVerify } from "jose";

export interface SinkEvent {
  event_id: string;
  message_id: string;
  request_id: string | null;
  custom_data: string | null;
  status: string;
  channel: string;
  fallback: boolean;
  error?: { code: string; message: string };
  [k: string]: unknown;
}

export interface Sink {
  url: string;
  events: SinkEvent[];
  posts: number;
  badTokens: number;
  /** Status to answer with; 200 by default. */
  answer: number;
  /** Milliseconds to wait before answering (after recording the events, when answering 200). */
  delayMs: number;
  /** The distinct events (by event_id) of one message: delivery is at-least-once, consumers dedupe. */
  byMessage(id: string): SinkEvent[];
  /** Events that arrived again with an event_id already seen. */
  redelivered: number;
  /** The most POSTs in progress at once, by URL path. */
  maxInFlight: Map<string, number>;
  stop(): void;
}

export function startSink(secret: string, opts: { bearer?: boolean; maxSkewS?: number } = {}): Sink {
  const key = new TextEncoder().encode(secret);
  const seen = new Set<string>();
  const sink: Sink = {
    url: "",
    events: [],
    posts: 0,
    badTokens: 0,
    answer: 200,
    delayMs: 0,
    redelivered: 0,
    maxInFlight: new Map(),
    byMessage: (id) => sink.events.filter((e) => e.message_id === id),
    stop: () => server.stop(true),
  };
  const inFlight = new Map<string, number>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const n = (inFlight.get(path) ?? 0) + 1;
      inFlight.set(path, n);
      sink.maxInFlight.set(path, Math.max(n, sink.maxInFlight.get(path) ?? 0));
      try {
        return await answer(req);
      } finally {
        inFlight.set(path, inFlight.get(path)! - 1);
      }
    },
  });
  async function answer(req: Request): Promise<Response> {
    sink.posts++;
    const body = await req.text();
    if (sink.answer !== 200) {
      if (sink.delayMs) await Bun.sleep(sink.delayMs);
      return new Response("nope", { status: sink.answer });
    }
    let token = req.headers.get("authorization") ?? "";
    if (opts.bearer) {
      if (!token.startsWith("Bearer ")) {
        sink.badTokens++;
        return new Response("no bearer", { status: 401 });
      }
      token = token.slice(7);
    }
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
      const skew = Math.abs(Date.now() / 1000 - (payload.iat ?? 0));
      if (typeof payload.iat !== "number" || skew > (opts.maxSkewS ?? 15 * 60)) throw new Error("iat outside the window");
    } catch {
      sink.badTokens++;
      return new Response("bad token", { status: 401 });
    }
    const events = JSON.parse(body) as SinkEvent[];
    if (!Array.isArray(events)) return new Response("not an array", { status: 400 });
    for (const e of events) {
      if (seen.has(e.event_id)) sink.redelivered++;
      else sink.events.push(e);
      seen.add(e.event_id);
    }
    // A slow sink: it has the events, only its answer is late (the sender may give up and resend).
    if (sink.delayMs) await Bun.sleep(sink.delayMs);
    return new Response("ok");
  }
  sink.url = `http://127.0.0.1:${server.port}/callback`;
  return sink;
}
