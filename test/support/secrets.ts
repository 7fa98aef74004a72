// The secrets-never-logged check for adapter tests: every warn/error (alarm) line a carrier logged,
// searched for each configured secret in the spellings it could leak in.

/** A password, user:password, its Basic-auth base64 and its URL-encoded form. */
export function secretForms(username: string, password: string): string[] {
  const pair = `${username}:${password}`;
  return [password, pair, Buffer.from(pair).toString("base64"), encodeURIComponent(password), encodeURIComponent(pair)];
}

/** The lines at `levels` that carry one of `secrets`, as "secret in: line" (empty when none). */
export function linesCarrying(lines: readonly { level: string; obj: object; msg?: string }[], secrets: readonly string[], levels = ["warn", "error", "fatal"]): string[] {
  const found: string[] = [];
  for (const l of lines) {
    if (!levels.includes(l.level)) continue;
    const text = JSON.stringify({ obj: l.obj, msg: l.msg }, (_, v) => (v instanceof Error ? { message: v.message, stack: v.stack, cause: v.cause } : v));
    for (const s of secrets) if (s && text.includes(s)) found.push(`${s} in: ${text}`);
  }
  return found;
}
