// What operators and their monitoring look at: liveness, readiness, Prometheus metrics.
import { Elysia } from "elysia";
import type { CarrierHealth } from "../../adapters/carrier.ts";
import { carrierReadiness } from "../domain/route.ts";
import type { Metrics } from "../observe/metrics.ts";

export interface OpsDeps {
  metrics: Metrics;
  /** Storage accepts writes (the last commit succeeded, or a probe write does). */
  storageWritable: () => boolean;
  carriers: () => CarrierHealth[];
  /** Carrier lists that back each other up (see carrierReadiness). */
  backupGroups: () => (readonly string[])[];
  /** Refreshes gauges that are read from the database, just before a scrape. */
  refreshGauges: () => Promise<void>;
  shuttingDown: () => boolean;
}

/** Liveness: 200 while the process runs. Served on every listener, so each can be probed. */
export function liveness() {
  return new Elysia({ name: "liveness" }).get("/healthz", () => new Response("ok\n"));
}

/** A link's carrier: link names are "carrier", "carrier:mode:n" or "carrier#n". */
const carrierOfLink = (link: string) => link.split(/[#:]/)[0]!;

function readiness(d: OpsDeps, carriers: CarrierHealth[]): { problems: string[]; degraded: string[] } {
  const links = carriers.map((c) => ({
    carrier: carrierOfLink(c.name),
    problem: c.state === "down" || c.state === "alarm" ? `carrier ${c.name}: ${c.state} (${c.detail})` : null,
  }));
  const { unready, degraded } = carrierReadiness(links, d.backupGroups());
  return {
    problems: [...(d.shuttingDown() ? ["shutting down"] : []), ...(d.storageWritable() ? [] : ["storage is not writable"]), ...unready],
    degraded,
  };
}

export function ops(d: OpsDeps) {
  return new Elysia({ name: "ops" })
    .use(liveness())
    .get("/readyz", () => {
      const carriers = d.carriers();
      const { problems, degraded } = readiness(d, carriers);
      return new Response(JSON.stringify({ ready: problems.length === 0, problems, degraded, carriers }), {
        status: problems.length === 0 ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    })
    .get("/metrics", async () => {
      await d.refreshGauges();
      const carriers = d.carriers();
      d.metrics.ready.set(readiness(d, carriers).problems.length === 0 ? 1 : 0);
      // Only this node's links: a bind another node holds (standby) is not down, and one given back leaves no stale series.
      d.metrics.carrierUp.reset();
      for (const c of carriers) if (c.state !== "standby") d.metrics.carrierUp.set({ carrier: carrierOfLink(c.name), link: c.name }, c.state === "up" ? 1 : 0);
      return new Response(await d.metrics.registry.metrics(), { headers: { "content-type": d.metrics.registry.contentType } });
    });
}
