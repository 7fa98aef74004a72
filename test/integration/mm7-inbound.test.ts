// The MMSC posting delivery reports and MO messages to the gateway's endpoint over real HTTP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { CarrierEvents, CarrierReceipt, InboundMessage } from "../../adapters/carrier.ts";
import { createMm7Carrier, type Mm7Carrier } from "../../adapters/mm7/mm7-carrier.ts";
import { randomBytes, silentLog } from "../support/mm7.ts";
import { startMmscStub, type MmscStub } from "../peers/mm7-stub.ts";

const receipts: CarrierReceipt[] = [];
const inbound: InboundMessage[] = [];
let failNext = 0;
const events: CarrierEvents = {
  async receipt(r) {
    if (failNext > 0 && failNext--) throw new Error("store unavailable");
    receipts.push(r);
  },
  async inbound(m) {
    inbound.push(m);
  },
  moIncomplete() {},
};

let carrier: Mm7Carrier;
let gateway: ReturnType<typeof Bun.serve>;
let gatewayUrl: string;
let stub: MmscStub;

beforeAll(async () => {
  carrier = createMm7Carrier({ url: "http://127.0.0.1:9/mm7", inbound_username: "mmsc", inbound_password: "cb-pass" }, { log: silentLog, now: Date.now });
  await carrier.start(events);
  gateway = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => carrier.handleInbound(req) });
  gatewayUrl = `http://127.0.0.1:${gateway.port}/mm7`;
  stub = await startMmscStub();
});
afterAll(async () => {
  await gateway.stop(true);
  await stub.stop();
});

const auth = { username: "mmsc", password: "cb-pass" };

describe("delivery reports over HTTP", () => {
  test("each MMStatus reaches the pipeline with the right outcome, answered 1000", async () => {
    const statuses: [string, CarrierReceipt["outcome"], boolean | undefined][] = [
      ["Retrieved", "delivered", undefined],
      ["Forwarded", "delivered", undefined],
      ["Deferred", "pending", undefined],
      ["Indeterminate", "unknown", undefined],
      ["Expired", "failed", false],
      ["Rejected", "failed", false],
      ["Unrecognised", "failed", true],
    ];
    for (const [status, outcome, fallback] of statuses) {
      const res = await stub.sendDeliveryReport(gatewayUrl, { messageId: `MID-${status}`, status, date: "2025-03-01T12:00:00.000Z", transactionId: `tx-${status}`, ...auth });
      expect(res.status).toBe(200);
      expect(res.contentType).toContain("text/xml");
      expect(res.body).toContain(`>tx-${status}</`);
      expect(res.body).toContain("<StatusCode>1000</StatusCode>");
      const r = receipts.find((x) => x.carrierMessageId === `MID-${status}`)!;
      expect(r).toMatchObject({ carrier: "mms", outcome, code: `mm7:${status}`, timestamp: Date.parse("2025-03-01T12:00:00.000Z") });
      expect(r.fallbackEligible).toBe(fallback);
    }
  });

  test("without credentials: 401 and nothing recorded", async () => {
    const n = receipts.length;
    const res = await stub.sendDeliveryReport(gatewayUrl, { messageId: "NOAUTH", status: "Retrieved" });
    expect(res.status).toBe(401);
    expect(receipts.length).toBe(n);
  });

  test("a pipeline failure makes the gateway answer a temporary error; the MMSC's retry is then taken", async () => {
    failNext = 1;
    const first = await stub.sendDeliveryReport(gatewayUrl, { messageId: "RETRY-1", status: "Retrieved", transactionId: "tx-r", ...auth });
    expect(first.status).toBe(500);
    expect(first.body).toContain("<StatusCode>4006</StatusCode>");
    expect(receipts.some((r) => r.carrierMessageId === "RETRY-1")).toBe(false);
    const second = await stub.sendDeliveryReport(gatewayUrl, { messageId: "RETRY-1", status: "Retrieved", transactionId: "tx-r", ...auth });
    expect(second.status).toBe(200);
    expect(receipts.filter((r) => r.carrierMessageId === "RETRY-1").length).toBe(1);
  });
});

describe("MO DeliverReq over HTTP", () => {
  test("text and an image reach the pipeline", async () => {
    const img = randomBytes(40_000, 21);
    const res = await stub.sendDeliverReq(gatewayUrl, { from: "12025550123", to: "12345", subject: "photo", text: "look at this", media: [{ contentType: "image/jpeg", filename: "cat.jpg", bytes: img }], linkedId: "MO-9", ...auth });
    expect(res.status).toBe(200);
    expect(res.body).toContain("DeliverRsp");
    expect(inbound[0]).toMatchObject({ carrier: "mms", channel: "mms", carrierMessageId: "MO-9", from: "12025550123", to: "12345", subject: "photo", text: "look at this" });
    expect(Buffer.from(inbound[0]!.media[0]!.base64, "base64").equals(Buffer.from(img))).toBe(true);
  });
});
