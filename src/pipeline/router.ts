// Which carrier takes a message at claim time: the route (domain/route.ts) gives the candidates, this
// keeps what is known of each carrier's health — its own link state, and a run of temporary or
// unanswered submits — and lets a carrier that is skipped take one message every probe interval, so
// traffic fails back once it has recovered.
import type { CarrierHealth, SubmitResult } from "../../adapters/carrier.ts";
import { afterAttempt, chooseCarrier, RouteTable, type AfterAttempt, type RouteChoice } from "../domain/route.ts";
import type { StoredMessage } from "../domain/message.ts";

export interface RouterOptions {
  routes: RouteTable;
  /** Whether a carrier's submits can go out, by carrier name (Carrier.submitState; undefined: not configured). */
  state: (carrier: string) => CarrierHealth["state"] | undefined;
  /** Other nodes hold every bind of the carrier (adapters/carrier.ts standby). */
  standby?: (carrier: string) => boolean;
  failAfterErrors: number;
  probeMs: number;
  now: () => number;
  /** A message went to a later carrier of its route because an earlier one was skipped. */
  onFailover?: (from: string, to: string) => void;
}

interface Track {
  errors: number;
  lastTry: number;
}

export class Router {
  private readonly tracks = new Map<string, Track>();

  private routes: RouteTable;

  constructor(private readonly o: RouterOptions) {
    this.routes = o.routes;
  }

  /** A reloaded route table takes effect at the next claim. */
  setRoutes(routes: RouteTable): void {
    this.routes = routes;
  }

  backupGroups(): (readonly string[])[] {
    return this.routes.backupGroups();
  }

  route(m: StoredMessage): RouteChoice {
    return this.routes.lookup(m.channel, m.accountId, m.payload.to);
  }

  /**
   * The carrier `m` is claimed for now, or null when that is a carrier whose binds other nodes hold:
   * chosen as those nodes would (it is up there), so the message is left for them, not failed over.
   */
  choose(m: StoredMessage): string | null {
    const route = this.route(m);
    const standby = (c: string) => this.o.standby?.(c) ?? false;
    const chosen = chooseCarrier(route, m, (c) => standby(c) || this.available(c));
    if (standby(chosen)) return null;
    const first = route.carriers.find((c) => !m.refused.includes(c));
    if (m.pinned === null && first !== undefined && chosen !== first) this.o.onFailover?.(first, chosen);
    return chosen;
  }

  /** Notes what `carrier` answered and says where the message may go next. */
  after(m: StoredMessage, carrier: string, result: SubmitResult): AfterAttempt {
    const t = this.track(carrier);
    t.lastTry = this.o.now();
    // A definite refusal shows the carrier alive; "not now" and no answer count towards skipping it,
    // unless its link is down (that alone skips it, and a re-bind brings it back at once).
    if (result.kind !== "temporary") t.errors = 0;
    else if (!this.down(carrier)) t.errors++;
    return afterAttempt(this.route(m), m, carrier, result);
  }

  /** Up, or skipped (link down, alarm, a run of failures) with its probe not yet due. */
  available(carrier: string): boolean {
    const t = this.track(carrier);
    if (!this.down(carrier) && t.errors < this.o.failAfterErrors) return true;
    const now = this.o.now();
    if (now - t.lastTry < this.o.probeMs) return false;
    t.lastTry = now;
    return true;
  }

  /** For the status page and metrics: is the carrier being skipped now. */
  skipped(carrier: string): boolean {
    return this.down(carrier) || this.track(carrier).errors >= this.o.failAfterErrors;
  }

  private down(carrier: string): boolean {
    const state = this.o.state(carrier);
    return state === "down" || state === "alarm";
  }

  private track(carrier: string): Track {
    let t = this.tracks.get(carrier);
    if (!t) this.tracks.set(carrier, (t = { errors: 0, lastTry: Number.NEGATIVE_INFINITY }));
    return t;
  }
}
