// POST {inbound.mm7.path}: delivery reports, MO and read replies from the MMSC. The adapter parses,
// checks the MMSC's credentials and answers; this mounts it behind the same guessing guard as the
// Channel API, so wrong passwords cost the guesser a minute per few tries.
import { Elysia } from "elysia";
import type { GuessingGuard } from "./auth.ts";

type Server = { requestIP(r: Request): { address: string } | null } | null;

export function carrierInbound(path: string, handle: (req: Request) => Promise<Response>, guard: GuessingGuard, retryAfterS: number) {
  return new Elysia({ name: "carrier-inbound", seed: path }).post(
    path,
    async ({ request, server }: { request: Request; server: Server }) => {
      const addr = guard.watching() ? ((server as Server)?.requestIP(request)?.address ?? "unknown") : null;
      // Refused before the adapter runs: no credential check, no log line for the status page.
      if (addr !== null && guard.blocked(addr)) {
        return new Response("too many failed authentications from this address; try later\n", { status: 429, headers: { "retry-after": String(retryAfterS) } });
      }
      const answer = await handle(request);
      if (answer.status === 401) guard.failed(addr ?? (server as Server)?.requestIP(request)?.address ?? "unknown");
      return answer;
    },
    { parse: "none" },
  );
}
