// The Chan-* header comparison is constant-time: timingSafeEqual over fixed-length SHA-256 digests,
// never `===` or a length-dependent compare on the secret itself. Checked structurally (a spy), not by
// measuring time, which would be flaky.
import { describe, expect, mock, test } from "bun:test";
import * as crypto from "node:crypto";

describe("Authenticator comparison", () => {
  test("every configured header is compared with timingSafeEqual on two 32-byte digests, whatever the lengths", async () => {
    const calls: [number, number][] = [];
    const real = crypto.timingSafeEqual;
    mock.module("node:crypto", () => ({
      ...crypto,
      timingSafeEqual: (a: Buffer, b: Buffer) => {
        calls.push([a.length, b.length]);
        return real(a, b);
      },
    }));
    const { Authenticator } = await import(`../../src/http/auth.ts?spy=${Date.now()}`);
    const auth = new Authenticator([
      { id: "a", headers: { "Chan-Api-Key": "k".repeat(40), "Chan-Tenant": "t1" }, callback_secret: "s", inbound_url: "", enabled: true, allowed_senders: [], rate_limit: 0 },
      { id: "b", headers: { "Chan-Api-Key": "short" }, callback_secret: "s", inbound_url: "", enabled: true, allowed_senders: [], rate_limit: 0 },
    ]);
    for (const given of ["", "k", "k".repeat(40), "k".repeat(4000), "short", "shorT"]) {
      calls.length = 0;
      auth.authenticate(new Headers({ "chan-api-key": given, "CHAN-TENANT": "t1" }));
      // All three configured headers of both accounts are compared, even after a mismatch.
      expect(calls).toEqual([[32, 32], [32, 32], [32, 32]]);
    }
    expect(auth.authenticate(new Headers({ "chan-api-key": "k".repeat(40), "chan-tenant": "t1" }))?.id).toBe("a");
    expect(auth.authenticate(new Headers({ "Chan-Api-Key": "short" }))?.id).toBe("b");
    expect(auth.authenticate(new Headers({ "Chan-Api-Key": "shorT" }))).toBeNull();
  });

  test("the source never compares a secret with === (a guard against a refactor)", async () => {
    const src = await Bun.file(new URL("../../src/http/auth.ts", import.meta.url)).text();
    expect(src).toContain("matchesSecret(");
    expect(src).not.toMatch(/got\s*===\s*want|want\s*===\s*got/);
    const compare = await Bun.file(new URL("../../adapters/shared/secret.ts", import.meta.url)).text();
    expect(compare).toContain("timingSafeEqual(secretDigest(");
  });
});
