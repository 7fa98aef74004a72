// One normal form for phone numbers, so "+44…", "0044…" and "44…" are remembered as one number.

/** Digits only, country code first: separators dropped, a leading "+" or international "00" removed. */
export function normaliseNumber(raw: string): string {
  const compact = raw.trim().replace(/[\s().-]/g, "");
  return compact.replace(/^(\+|00)/, "").replace(/\D/g, "");
}
