// A cheap webhook sink in its own process for the end-to-end benchmarks: counts distinct events and
// records the first arrival time of each one by key, without verifying JWTs (only checks that a
// bearer/JWT header is there). A redelivery (same event_id; for Kannel the same id and type) is counted
// apart, never as a new event, so a run cannot make up for a lost callback with a repeated one.
//   POST <any path>  — the gateway's batches: a JSON array of events; event = event_id, key = request_id
//   GET  /dlr?id=K&type=T — Kannel's dlr-url; final types (1 delivered, 2 undelivered) count, key = id
//   GET  /stats      — {"events","redelivered","posts","first","last","noAuth"}
//   GET  /times      — {"key": arrival ms (performance.timeOrigin-based, sub-ms), …}
//   POST /reset      — forget everything
// Prints {"port":N} on stdout and runs until killed.
const now = () => performance.timeOrigin + performance.now();
let times = new Map<string, number>();
let eventIds = new Set<string>();
let events = 0;
let redelivered = 0;
let posts = 0;
let first = 0;
let last = 0;
let noAuth = 0;

function seen(eventId: string, key: string): void {
  const t = now();
  if (eventIds.has(eventId)) {
    redelivered++;
    return;
  }
  eventIds.add(eventId);
  if (!first) first = t;
  last = t;
  events++;
  if (!times.has(key)) times.set(key, t);
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const url = req.url;
    const q = url.indexOf("?");
    const path = url.slice(url.indexOf("/", 8), q < 0 ? undefined : q);
    if (req.method === "POST" && path !== "/reset") {
      posts++;
      if (!req.headers.get("authorization")) noAuth++;
      const batch = (await req.json()) as { event_id: string; request_id: string | null; status: string }[];
      for (const e of batch) seen(e.event_id, e.request_id ?? "");
      return new Response("ok");
    }
    if (path === "/dlr") {
      posts++;
      const p = new URLSearchParams(url.slice(q + 1));
      const type = Number(p.get("type"));
      if (type === 1 || type === 2) seen(`${p.get("id")}/${type}`, p.get("id") ?? "");
      return new Response("ok");
    }
    if (path === "/stats") return Response.json({ events, redelivered, posts, first, last, noAuth });
    if (path === "/times") return Response.json(Object.fromEntries(times));
    if (path === "/reset") {
      times = new Map();
      eventIds = new Set();
      events = redelivered = posts = first = last = noAuth = 0;
      return new Response("ok");
    }
    return new Response("not found", { status: 404 });
  },
});
console.log(JSON.stringify({ port: server.port }));
process.on("SIGTERM", () => process.exit(0));
