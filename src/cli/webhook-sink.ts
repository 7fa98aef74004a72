// `mms-gateway webhook-sink`: a small receiver that verifies the JWT the way Bloomreach does and
// prints each delivery report; for trying the gateway and for checking a callback secret.
import { jwtVerify } from "jose";
import { ConfigError } from "../config.ts";
import { flag } from "./args.ts";

export function startWebhookSink(opts: { listen: string; secret: string; bearer: boolean }): { url: string; stop(): void } {
  const key = new TextEncoder().encode(opts.secret);
  const [host, port] = opts.listen.split(/:(?=\d+$)/);
  const server = Bun.serve({
    hostname: host,
    port: Number(port),
    async fetch(req) {
      const body = await req.text();
      let token = req.headers.get("authorization") ?? "";
      if (opts.bearer) token = token.replace(/^Bearer /, "");
      let verdict: string;
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], maxTokenAge: "15m" });
        verdict = `JWT ok (iat ${payload.iat})`;
      } catch (e) {
        verdict = `JWT REJECTED: ${(e as Error).message}`;
      }
      console.log(`${new Date().toISOString()} ${req.method} ${new URL(req.url).pathname} — ${verdict}`);
      try {
        for (const event of JSON.parse(body) as unknown[]) console.log(`  ${JSON.stringify(event)}`);
      } catch {
        console.log(`  (not JSON) ${body.slice(0, 500)}`);
      }
      return new Response(verdict.startsWith("JWT ok") ? "ok\n" : "bad token\n", { status: verdict.startsWith("JWT ok") ? 200 : 401 });
    },
  });
  return { url: `http://${host}:${server.port}/`, stop: () => server.stop(true) };
}

/** The command: runs until the process is stopped. */
export function runWebhookSink(args: string[]): number {
  const secret = flag(args, "--secret");
  if (!secret) throw new ConfigError(["webhook-sink needs --secret (the account's callback_secret)"]);
  const sink = startWebhookSink({ listen: flag(args, "--listen") ?? "127.0.0.1:9000", secret, bearer: args.includes("--bearer") });
  console.log(`webhook sink listening on ${sink.url}`);
  return -1;
}
