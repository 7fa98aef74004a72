// [inbound] listen: the carrier and monitoring side (/mm7, /metrics, /readyz) on a second listener,
// and off the public one.
import { expect, test } from "bun:test";
import { MM7_INBOUND, post, sendBody, startTestApp, waitFor } from "../support/app.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";

test("with inbound.listen, /mm7, /metrics and /readyz answer only there, and the Channel API only on server.listen", async () => {
  const mmsc = await startMmscStub({ scenario: () => ({ kind: "ok", messageId: "mmsc-1" }) });
  const app = await startTestApp({
    carriers: { mms: { kind: "mm7", url: mmsc.url, vaspid: "V", vasid: "S" } },
    inbound: { listen: "127.0.0.1:0", mm7: MM7_INBOUND },
  });
  try {
    expect(app.carrierUrl).not.toBe(app.url);
    const r = await post(app.url, "/mms", sendBody());
    expect(r.status).toBe(200);
    await waitFor("submitted", async () => ((await app.store.describe(r.json.id)) as { state: string }).state === "submitted");

    // The public listener: no carrier or monitoring paths.
    const report = { messageId: "mmsc-1", status: "Retrieved", ...MM7_INBOUND };
    expect((await mmsc.sendDeliveryReport(`${app.url}/mm7`, report)).status).toBe(404);
    for (const path of ["/metrics", "/readyz"]) expect((await fetch(`${app.url}${path}`)).status).toBe(404);
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200); // liveness answers on every listener

    // The carrier listener: the report is taken, monitoring answers, the Channel API does not exist.
    expect((await mmsc.sendDeliveryReport(`${app.carrierUrl}/mm7`, report)).status).toBe(200);
    await waitFor("delivered", async () => ((await app.store.describe(r.json.id)) as { state: string }).state === "delivered");
    for (const path of ["/metrics", "/readyz", "/healthz"]) expect((await fetch(`${app.carrierUrl}${path}`)).status).toBe(200);
    expect((await post(app.carrierUrl, "/mms", sendBody())).status).toBe(404);
  } finally {
    await app.stop();
    await mmsc.stop();
  }
  // Both listeners are closed by stop().
  expect(await fetch(`${app.carrierUrl}/healthz`).then(() => "open", () => "closed")).toBe("closed");
});
