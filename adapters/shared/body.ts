// Reading an HTTP body (a peer's answer, or its request to us) without ever holding more than a limit.

/**
 * The body's bytes up to `limit`. Past it: "cut" keeps the first `limit` bytes (an answer kept only
 * for logs and status parsing), "refuse" returns undefined (a request too large to accept).
 */
export async function readBody(body: ReadableStream<Uint8Array> | null, limit: number, past: "cut" | "refuse"): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      if (past === "refuse") return undefined;
      break;
    }
  }
  return Buffer.concat(chunks, Math.min(total, limit));
}
