// Routing, pure: which carriers may take a message (the first matching route's list, in preference
// order) and which of them takes it now, given what is known of their health. No clock, no I/O.
import type { Channel } from "./message.ts";

export interface RouteRule {
  channel: Channel;
  /** Digits; [] = any recipient. */
  prefixes: string[];
  /** Account ids; [] = any account. */
  accounts: string[];
  /** Carrier names, most preferred first. */
  carriers: string[];
  /** Definite failures after which the next carrier may have the message. */
  retry_elsewhere: ("temporary" | "permanent")[];
}

/** What a lookup gives: the carriers in preference order and when the message may leave one of them. */
export interface RouteChoice {
  carriers: readonly string[];
  elsewhereOnTemporary: boolean;
  elsewhereOnPermanent: boolean;
}

/** A number as routes and inbound_numbers compare it: without a leading "+" or "00", then digits only. */
export function digitsOf(number: string): string {
  return number.replace(/^\+/, "").replace(/^00/, "").replace(/\D/g, "");
}

/** True when every message `later` could match is matched by `earlier` first (same channel). */
export function routeShadowedBy(later: RouteRule, earlier: RouteRule): boolean {
  if (later.channel !== earlier.channel) return false;
  const accountsCovered = earlier.accounts.length === 0 || (later.accounts.length > 0 && later.accounts.every((a) => earlier.accounts.includes(a)));
  const prefixesCovered =
    earlier.prefixes.length === 0 || (later.prefixes.length > 0 && later.prefixes.every((p) => earlier.prefixes.some((e) => p.startsWith(e))));
  return accountsCovered && prefixesCovered;
}

interface Compiled {
  accounts: Set<string> | null;
  choice: RouteChoice;
}

/**
 * The routes compiled for lookup, per channel. The first matching route (lowest index) wins: routes
 * with prefixes are found through a map from prefix to their indexes, one probe per length of the
 * recipient's digits, so a lookup does not walk a long table; routes for any recipient are few (the
 * account routes) and walked in order.
 */
export class RouteTable {
  private readonly channels: Record<Channel, { routes: Compiled[]; byPrefix: Map<string, number[]>; maxPrefix: number; anyRecipient: number[] }>;
  private readonly defaults: Record<Channel, RouteChoice>;

  constructor(rules: RouteRule[], defaults: Record<Channel, string>) {
    const choice = (r: Pick<RouteRule, "carriers" | "retry_elsewhere">): RouteChoice => ({
      carriers: r.carriers,
      elsewhereOnTemporary: r.retry_elsewhere.includes("temporary"),
      elsewhereOnPermanent: r.retry_elsewhere.includes("permanent"),
    });
    const empty = () => ({ routes: [] as Compiled[], byPrefix: new Map<string, number[]>(), maxPrefix: 0, anyRecipient: [] as number[] });
    this.channels = { mms: empty(), sms: empty() };
    for (const rule of rules) {
      const ch = this.channels[rule.channel];
      const index = ch.routes.push({ accounts: rule.accounts.length ? new Set(rule.accounts) : null, choice: choice(rule) }) - 1;
      if (rule.prefixes.length === 0) ch.anyRecipient.push(index);
      for (const p of new Set(rule.prefixes)) {
        const list = ch.byPrefix.get(p) ?? [];
        list.push(index);
        ch.byPrefix.set(p, list);
        ch.maxPrefix = Math.max(ch.maxPrefix, p.length);
      }
    }
    // A channel's default carrier has no other to go to.
    this.defaults = {
      mms: choice({ carriers: [defaults.mms], retry_elsewhere: [] }),
      sms: choice({ carriers: [defaults.sms], retry_elsewhere: [] }),
    };
  }

  lookup(channel: Channel, accountId: string, to: string): RouteChoice {
    const ch = this.channels[channel];
    const digits = digitsOf(to);
    const takes = (i: number) => {
      const a = ch.routes[i]!.accounts;
      return a === null || a.has(accountId);
    };
    let best = Number.POSITIVE_INFINITY;
    for (let len = Math.min(ch.maxPrefix, digits.length); len > 0; len--) {
      const list = ch.byPrefix.get(digits.slice(0, len));
      if (!list) continue;
      // Indexes are ascending: the first route that takes the account is this prefix's best.
      for (const i of list) {
        if (i >= best) break;
        if (takes(i)) {
          best = i;
          break;
        }
      }
    }
    for (const i of ch.anyRecipient) {
      if (i >= best) break;
      if (takes(i)) {
        best = i;
        break;
      }
    }
    return best === Number.POSITIVE_INFINITY ? this.defaults[channel] : ch.routes[best]!.choice;
  }

  /** The carrier lists that can each serve some recipients: every route's, and each channel's default alone. */
  backupGroups(): (readonly string[])[] {
    return [this.defaults.mms, this.defaults.sms, ...this.channels.mms.routes.map((r) => r.choice), ...this.channels.sms.routes.map((r) => r.choice)].map(
      (c) => c.carriers,
    );
  }
}

/**
 * Readiness: a node is unready only when some recipients have no carrier left — every carrier of one
 * backup group has a link down or in alarm. A link down behind a working backup is degraded, not unready
 * (a load balancer must not take every node out during an ordinary failover).
 */
export function carrierReadiness(links: { carrier: string; problem: string | null }[], groups: (readonly string[])[]): { unready: string[]; degraded: string[] } {
  const failing = new Set(links.filter((l) => l.problem).map((l) => l.carrier));
  const stranded = new Set(groups.filter((g) => g.length > 0 && g.every((c) => failing.has(c))).flat());
  // A carrier in no group (configured, routed nowhere) is judged alone, as before routes existed.
  const grouped = new Set(groups.flat());
  const problems = links.filter((l): l is { carrier: string; problem: string } => l.problem !== null);
  return {
    unready: problems.filter((l) => stranded.has(l.carrier) || !grouped.has(l.carrier)).map((l) => l.problem),
    degraded: problems.filter((l) => !stranded.has(l.carrier) && grouped.has(l.carrier)).map((l) => l.problem),
  };
}

/** What a message carries from earlier attempts that limits where it may go. */
export interface Binding {
  /** A carrier that may already hold it (in doubt, or the route forbids moving): only it may have it. */
  pinned: string | null;
  /** Carriers that refused it for good when the route allowed another to try. */
  refused: readonly string[];
}

/**
 * The carrier that takes a message now: the pinned one if any, else the first of the route's list that
 * has not refused it and is available. When none is available the first eligible one takes it anyway,
 * and its temporary answer sends the message round the retry loop (validity still applies), as with a
 * single carrier.
 */
export function chooseCarrier(route: RouteChoice, binding: Binding, available: (carrier: string) => boolean): string {
  if (binding.pinned !== null) return binding.pinned;
  const eligible = route.carriers.filter((c) => !binding.refused.includes(c));
  if (eligible.length === 0) return route.carriers[route.carriers.length - 1]!;
  return eligible.find(available) ?? eligible[0]!;
}

/** What the store records about where the message may go after an attempt that did not succeed. */
export interface AfterAttempt {
  /** Keep the message on this carrier. */
  pin: boolean;
  /** A permanent refusal: back to the queue for the next carrier instead of failing. */
  elsewhere: boolean;
}

/**
 * After a submit to `carrier`: an answer that never came (in doubt) keeps the message on that carrier
 * (resent there or not at all, as the in-flight policy says); a definite failure lets it move on only
 * when the route allows that kind, and a permanent one only when a carrier that has not refused remains.
 */
export function afterAttempt(
  route: RouteChoice,
  binding: Binding,
  carrier: string,
  result: { kind: "ok" } | { kind: "temporary"; inDoubt?: boolean } | { kind: "permanent" },
): AfterAttempt {
  if (result.kind === "ok") return { pin: false, elsewhere: false };
  if (result.kind === "temporary") return { pin: result.inDoubt === true || !route.elsewhereOnTemporary, elsewhere: false };
  const left = route.carriers.filter((c) => c !== carrier && !binding.refused.includes(c));
  return { pin: false, elsewhere: route.elsewhereOnPermanent && left.length > 0 };
}

/**
 * The account that owns the number an MO was sent to (`inbound_numbers`: exact, or "prefix*"): an
 * exact number beats a prefix, a longer prefix a shorter. Null when no account owns it.
 */
export function inboundOwner<A extends { inbound_numbers: readonly string[] }>(accounts: readonly A[], to: string): A | null {
  const digits = digitsOf(to);
  let best: A | null = null;
  let bestLength = -1;
  for (const a of accounts) {
    for (const n of a.inbound_numbers) {
      const prefix = n.endsWith("*");
      const d = digitsOf(prefix ? n.slice(0, -1) : n);
      // An exact number ranks above any prefix of the same length.
      const rank = prefix ? d.length : d.length + 0.5;
      if ((prefix ? digits.startsWith(d) : digits === d) && rank > bestLength) {
        best = a;
        bestLength = rank;
      }
    }
  }
  return best;
}
