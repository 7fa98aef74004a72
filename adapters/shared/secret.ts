// Comparing a presented secret (password, token, header value) with the expected one in constant time.
import { createHash, timingSafeEqual } from "node:crypto";

/** What to keep of an expected secret: its SHA-256, so every comparison is of equal lengths. */
export function secretDigest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

/** Whether `presented` is the secret `expected` was made from, in time independent of both. */
export function matchesSecret(presented: string, expected: Buffer): boolean {
  return timingSafeEqual(secretDigest(presented), expected);
}
