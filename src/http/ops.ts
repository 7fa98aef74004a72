// What operators and their monitoring look at: liveness, readiness, Prometheus metrics.
import { Elysia } from "elysia";
import type { CarrierHealth } from "../../adapters/carrier.ts";
import type { Metrics } from "../metrics.ts";

export interface OpsDeps {
  metrics: Metrics;
  /** Storage accepts writes (the last commit succeeded, or a probe write does). */
  storageWritable: () => boolean;
  carriers: () => CarrierHealth[];
  /** Refreshes gauges that are read from the database, just before a scrape. */
  refreshGauges: () => Promise<void>;
  shuttingDown: () => boolean;
}

/** Liveness: 200 while the process runs. Served on every listener, so each can be probed. */
export function liveness() {
  return new Elysia({ name: "liveness" }).get("/healthz", () => new Response("ok\n"));
}

function readinessProblems(d: OpsDeps, carriers: CarrierHealth[]): string[] {
  return [
    ...(d.shuttingDown() ? ["shutting down"] : []),
    ...(d.storageWritable() ? [] : ["storage is not writable"]),
    ...carriers.filter((c) => c.state === "down" || c.state === "alarm").map((c) => `carrier ${c.name}: ${c.state} (${c.detail})`),
  ];
}

export function ops(d: OpsDeps) {
  return new Elysia({ name: "ops" })
    .use(liveness())
    .get("/readyz", () => {
      const carriers = d.carriers();
      const problems = readinessProblems(d, carriers);
      return new Response(JSON.stringify({ ready: problems.length === 0, problems, carriers }), {
        status: problems.length === 0 ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    })
    .get("/metrics", async () => {
      await d.refreshGauges();
      d.metrics.ready.set(readinessProblems(d, d.carriers()).length === 0 ? 1 : 0);
      for (const c of d.carriers()) d.metrics.carrierUp.set({ carrier: c.name.split(/[#:]/)[0]!, link: c.name }, c.state === "up" ? 1 : 0);
      return new Response(await d.metrics.registry.metrics(), { headers: { "content-type": d.metrics.registry.contentType } });
    });
}
