// POST {inbound.mm7.path}: delivery reports, MO and read replies from the MMSC. The adapter parses
// and answers; this only mounts it.
import { Elysia } from "elysia";

export function carrierInbound(path: string, handle: (req: Request) => Promise<Response>) {
  return new Elysia({ name: "carrier-inbound" }).post(path, ({ request }) => handle(request), { parse: "none" });
}
