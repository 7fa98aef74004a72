// Chan-* header authentication (contract section 2) and the guard against credential guessing.
import { matchesSecret, secretDigest } from "../../adapters/shared/secret.ts";
import type { AccountConfig } from "../config.ts";
import { clientGroup } from "../egress/address.ts";

interface PreparedAccount {
  account: AccountConfig;
  /** Lower-cased header name → SHA-256 of the expected value (compared in constant time). */
  expected: [string, Buffer][];
}

export class Authenticator {
  private readonly accounts: PreparedAccount[];

  constructor(accounts: AccountConfig[]) {
    this.accounts = accounts.map((account) => ({
      account,
      expected: Object.entries(account.headers).map(([k, v]) => [k.toLowerCase(), secretDigest(v)]),
    }));
  }

  /**
   * The account whose every listed header matches. Every account is compared, and every value in
   * constant time, so the answer's timing says nothing about which header or account was close.
   */
  authenticate(headers: Headers): AccountConfig | null {
    let found: AccountConfig | null = null;
    for (const p of this.accounts) {
      let ok = true;
      for (const [name, want] of p.expected) {
        const got = headers.get(name);
        const same = matchesSecret(got ?? "", want);
        ok = ok && got !== null && same;
      }
      if (ok && found === null) found = p.account;
    }
    return found;
  }
}

/**
 * Failed authentications per client (IPv4 address or IPv6 /64) in a minute; past the limit the client
 * gets 429 without its credentials being checked, so guessing a key costs a minute per few tries.
 */
export class GuessingGuard {
  /** In the order each client's minute began, so the first entry is the one to drop when full. */
  private readonly failures = new Map<string, { count: number; since: number }>();
  private pruned = 0;

  constructor(
    private readonly limitPerMinute: number,
    private readonly now: () => number,
    /** Clients remembered at most; past it the oldest are forgotten (memory stays bounded under a spray). */
    private readonly maxClients = 100_000,
  ) {}

  /** True while any address has recent failures (only then is a request's address worth looking up). */
  watching(): boolean {
    if (this.limitPerMinute <= 0 || this.failures.size === 0) return false;
    const now = this.now();
    if (now - this.pruned > 1000) {
      this.pruned = now;
      for (const [addr, f] of this.failures) if (now - f.since > 60_000) this.failures.delete(addr);
    }
    return this.failures.size > 0;
  }

  blocked(addr: string): boolean {
    if (this.limitPerMinute <= 0) return false;
    const client = clientGroup(addr);
    const f = this.failures.get(client);
    if (!f) return false;
    if (this.now() - f.since > 60_000) {
      this.failures.delete(client);
      return false;
    }
    return f.count >= this.limitPerMinute;
  }

  failed(addr: string): void {
    const now = this.now();
    const client = clientGroup(addr);
    const f = this.failures.get(client);
    if (f && now - f.since <= 60_000) {
      f.count++;
      return;
    }
    this.failures.delete(client); // a new minute goes to the end of the order
    this.failures.set(client, { count: 1, since: now });
    for (const oldest of this.failures.keys()) {
      if (this.failures.size <= this.maxClients) break;
      this.failures.delete(oldest);
    }
  }
}
