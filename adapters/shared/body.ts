// Reading an HTTP body (a peer's answer, or its request to us) without ever holding more than a limit.

/**
 * The body's bytes up to `limit`. Past it: "cut" keeps the first `limit` bytes (an answer kept only
 * for logs and status parsing), "refuse" returns undefined (a request too large to accept). With
 * `onChunk`, each chunk within the limit goes to it as it arrives (a large download streamed to disk)
 * and the bytes returned are empty.
 */
export async function readBody(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  past: "cut" | "refuse",
  onChunk?: (chunk: Uint8Array) => void,
): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  const take = onChunk ?? ((chunk: Uint8Array) => void chunks.push(chunk));
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (total + value.byteLength > limit) {
      await reader.cancel().catch(() => {});
      if (past === "refuse") return undefined;
      take(value.subarray(0, limit - total));
      total = limit;
      break;
    }
    take(value);
    total += value.byteLength;
  }
  return onChunk ? new Uint8Array(0) : Buffer.concat(chunks, total);
}
