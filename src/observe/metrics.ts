// Prometheus metrics, one registry per app (no globals): every counter the gateway keeps.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "../store/index.ts";

/** Distinct unknown field names counted by name; any further name is counted as "other". */
export const unknownFieldNamesKept = 50;

/**
 * Label values that come from clients: the first `max` distinct ones are kept, later ones become
 * "other", so no client can add series (and scrape memory) without bound.
 */
function boundedLabel(max: number): (value: string) => string {
  const kept = new Set<string>();
  return (value) => {
    if (kept.has(value)) return value;
    if (kept.size >= max) return "other";
    kept.add(value);
    return value;
  };
}

export function createMetrics() {
  const registry = new Registry();
  const c = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const h = (name: string, help: string, labelNames: string[], buckets: number[]) =>
    new Histogram({ name, help, labelNames, buckets, registers: [registry] });
  const ms = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
  return {
    registry,
    requests: c("gateway_http_requests_total", "Channel API requests by endpoint and status", ["endpoint", "status"]),
    accepted: c("gateway_messages_accepted_total", "Messages accepted (200, new)", ["channel"]),
    duplicates: c("gateway_duplicates_total", "Requests answered from the dedup record", ["body_differs"]),
    unknownFields: c("gateway_unknown_fields_total", `Unknown top-level fields in send requests (the first ${unknownFieldNamesKept} names, then "other")`, ["field"]),
    unknownFieldLabel: boundedLabel(unknownFieldNamesKept),
    submissions: c("gateway_submissions_total", "Carrier submits by carrier and outcome", ["carrier", "outcome"]),
    failovers: c("gateway_failovers_total", "Messages claimed for a later carrier of their route because `carrier` was skipped (down or failing)", ["carrier", "to"]),
    inboundUnowned: c("gateway_inbound_unowned_total", "MO to a number no account's inbound_numbers owns (sent to the first account with an inbound_url)", ["channel"]),
    retries: c("gateway_retries_total", "Temporary carrier outcomes scheduled for retry", ["carrier"]),
    fallbacks: c("gateway_fallbacks_total", "MMS turned into fallback SMS"),
    capabilityHits: c("gateway_capability_hits_total", "MMS sent straight to the SMS fallback because the number is remembered as unable to take MMS"),
    mediaAdaptations: c("gateway_media_adaptations_total", "Media adaptations computed (each content and carrier profile once; reuses are not counted)"),
    mediaUnfit: c("gateway_media_unfit_total", "Messages whose media could not be made to fit the carrier's limit"),
    finals: c("gateway_final_events_total", "Messages reaching a final state", ["status"]),
    receipts: c("gateway_receipts_total", "Carrier receipts by carrier, outcome and result", ["carrier", "outcome", "result"]),
    inbound: c("gateway_inbound_total", "Mobile-originated messages received", ["channel"]),
    moIncomplete: c("gateway_mo_incomplete_total", "Concatenated MO given up before all parts came (reason: expired, full), delivered partial or lost", ["carrier", "reason", "result"]),
    webhookDeliveries: c("gateway_webhook_deliveries_total", "Webhook POSTs by result", ["result"]),
    webhookEvents: c("gateway_webhook_events_total", "Webhook events by result", ["result"]),
    deadLetters: c("gateway_dead_letters_total", "Events dead-lettered"),
    storageErrors: c("gateway_storage_errors_total", "Writes refused by storage"),
    queueDepth: new Gauge({ name: "gateway_queue_depth", help: "Live messages by state and channel", labelNames: ["state", "channel"], registers: [registry] }),
    queueOldest: new Gauge({ name: "gateway_queue_oldest_seconds", help: "Age of the oldest live message by state", labelNames: ["state", "channel"], registers: [registry] }),
    outboxDepth: new Gauge({ name: "gateway_outbox_events", help: "Outbox events by state (pending, dead)", labelNames: ["state"], registers: [registry] }),
    carrierSkipped: new Gauge({ name: "gateway_carrier_skipped", help: "1 while routes pass the carrier over for the next of their list (link down, alarm, or a run of failed submits)", labelNames: ["carrier"], registers: [registry] }),
    carrierUp: new Gauge({ name: "gateway_carrier_link_up", help: "1 when the carrier link is up", labelNames: ["carrier", "link"], registers: [registry] }),
    // Every node reports the whole cluster (one row per node sharing the store): any node's scrape shows a silent one.
    nodeUp: new Gauge({ name: "gateway_node_up", help: "1 while the node's heartbeat is younger than a claim lease (0: its claims are taken over)", labelNames: ["node"], registers: [registry] }),
    nodeHeartbeat: new Gauge({ name: "gateway_node_last_heartbeat_seconds", help: "Unix time of the node's last heartbeat", labelNames: ["node"], registers: [registry] }),
    ready: new Gauge({ name: "gateway_ready", help: "1 when /readyz would answer 200", registers: [registry] }),
    // Alert rules compare queue ages with it, so they follow the configuration.
    validity: new Gauge({ name: "gateway_delivery_validity_seconds", help: "delivery.validity_hours in seconds", registers: [registry] }),
    // Restarts show as changes of this value (an fsync failure exits the process on purpose).
    startTime: new Gauge({ name: "gateway_start_time_seconds", help: "Unix time the process started", registers: [registry] }),
    acceptLatency: h("gateway_accept_seconds", "Send request to durable 200", ["channel"], ms.map((x) => x / 1000)),
    submitLatency: h("gateway_submit_seconds", "Carrier submit round trip", ["carrier"], ms.map((x) => x / 1000)),
    receiptToWebhook: h("gateway_receipt_to_webhook_seconds", "Event written to webhook acknowledged", [], ms.map((x) => x / 1000)),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export interface GaugeSources {
  metrics: Metrics;
  store: Store;
  now: () => number;
  /** Every carrier's name, as they are now (SIGHUP may change them). */
  carriers: () => string[];
  /** Whether routes are passing a carrier over for now. */
  skipped: (carrier: string) => boolean;
}

/** The gauges read from the store and the router at scrape time. */
export async function refreshGauges({ metrics, store, now, carriers, skipped }: GaugeSources): Promise<void> {
  // A store that cannot be read (PostgreSQL away) keeps the last figures: /metrics still answers,
  // and gateway_ready says why they are stale.
  const [queue, events, nodes] = await Promise.all([store.queueStats(), store.eventStats(), store.nodes()]).catch(() => [null, null, null]);
  if (!queue || !events || !nodes) return;
  metrics.queueDepth.reset();
  metrics.queueOldest.reset();
  for (const q of queue) {
    metrics.queueDepth.set({ state: q.state, channel: q.channel }, q.count);
    if (q.oldest !== null) metrics.queueOldest.set({ state: q.state, channel: q.channel }, (now() - q.oldest) / 1000);
  }
  for (const name of carriers()) metrics.carrierSkipped.set({ carrier: name }, skipped(name) ? 1 : 0);
  metrics.outboxDepth.reset();
  for (const e of events) metrics.outboxDepth.set({ state: e.state }, e.count);
  metrics.nodeUp.reset();
  metrics.nodeHeartbeat.reset();
  for (const n of nodes) {
    metrics.nodeUp.set({ node: n.id }, n.live ? 1 : 0);
    metrics.nodeHeartbeat.set({ node: n.id }, n.seenAt / 1000);
  }
}
