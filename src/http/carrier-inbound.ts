// POST {inbound.mm7.path}: delivery reports, MO and read replies from the MMSC. The adapter parses,
// checks the MMSC's credentials and answers; this mounts it behind the same guessing guard as the
// Channel API, so wrong passwords cost the guesser a minute per few tries.
import { Elysia } from "elysia";
import type { GuessingGuard } from "./auth.ts";

type Server = { requestIP(r: Request): { address: string } | null } | null;

/**
 * `handle` gets the carrier's key: "mms" at `path` itself, NAME at `path`/NAME. It looks the carrier up
 * per request, so a SIGHUP that adds, replaces or removes an MM7 carrier is followed at the next request.
 */
export function carrierInbound(path: string, handle: (req: Request, key: string) => Promise<Response>, guard: GuessingGuard, retryAfterS: number) {
  const route = async ({ request, server, params }: { request: Request; server: Server; params?: Record<string, string | undefined> }) => {
      const addr = guard.watching() ? ((server as Server)?.requestIP(request)?.address ?? "unknown") : null;
      // Refused before the adapter runs: no credential check, no log line for the status page.
      if (addr !== null && guard.blocked(addr)) {
        return new Response("too many failed authentications from this address; try later\n", { status: 429, headers: { "retry-after": String(retryAfterS) } });
      }
      // [carriers.mms] answers at `path` only; "" is no carrier's key.
      const answer = await handle(request, params?.key === undefined ? "mms" : params.key === "mms" ? "" : params.key);
      if (answer.status === 401) guard.failed(addr ?? (server as Server)?.requestIP(request)?.address ?? "unknown");
      return answer;
  };
  return new Elysia({ name: "carrier-inbound", seed: path })
    .post(path, route, { parse: "none" })
    .post(`${path.replace(/\/$/, "")}/:key`, route, { parse: "none" });
}
