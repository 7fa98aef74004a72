// The admin token guards /admin/* and /status. Two spellings of the same secret: `Authorization:
// Bearer <token>` for scripts, and Basic with user "admin" and the token as password, because that is
// what a browser can prompt for (a `?token=` in the URL would end up in history and proxy logs).
import { matchesSecret, secretDigest } from "../../adapters/shared/secret.ts";
import { GuessingGuard } from "../http/auth.ts";

export function adminGuard(token: string, now: () => number) {
  const want = secretDigest(token);
  const guard = new GuessingGuard(30, now);
  const same = (got: string) => matchesSecret(got, want);

  /** null when the request may pass; otherwise the answer to send. */
  return (request: Request, addr: string): Response | null => {
    // No token configured: the admin surface does not exist over HTTP (the CLI still works).
    if (token === "") return new Response("not found\n", { status: 404 });
    if (guard.blocked(addr)) return new Response("too many failed attempts; try later\n", { status: 429, headers: { "retry-after": "60" } });
    const header = request.headers.get("authorization") ?? "";
    const [scheme, value = ""] = header.split(/\s+/, 2) as [string, string?];
    let ok = false;
    if (/^bearer$/i.test(scheme)) ok = same(value);
    else if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      ok = colon !== -1 && decoded.slice(0, colon) === "admin" && same(decoded.slice(colon + 1));
    }
    if (ok) return null;
    if (header !== "") guard.failed(addr);
    return new Response("the admin token is required\n", {
      status: 401,
      headers: { "www-authenticate": 'Basic realm="mms-gateway admin", charset="UTF-8"' },
    });
  };
}
