// Receipts whose id is written in another base than the submit answer's (Kannel's msg-id-type), with
// the default receipt_id_base: matched end to end over SMPP/TCP, an ambiguous id told apart by the
// handset, a receipt that matches nothing listed by the admin API and applied by a later submit,
// (the store narrowing to a carrier's base once learnt is in store-conformance.test.ts, on both engines).
import { afterEach, describe, expect, test } from "bun:test";
import { runAdmin } from "../../src/cli/admin.ts";
import { ACME_SECRET, post, sendBody, waitFor } from "../support/app.ts";
import { scrape } from "../support/metrics.ts";
import { adminFetch, startLoggedApp } from "../support/ops.ts";
import { startSink, type Sink } from "../support/sink.ts";
import { startSmsc, type Smsc, type SmscOptions } from "../peers/smpp-sim.ts";

let smsc: Smsc | undefined;
let app: Awaited<ReturnType<typeof startLoggedApp>> | undefined;
let sink: Sink | undefined;

afterEach(async () => {
  await app?.stop();
  await smsc?.stop();
  sink?.stop();
  app = smsc = sink = undefined;
});

/** A gateway with the default receipt_id_base, bound to a simulator that answers as `sim` says. */
async function gateway(sim: SmscOptions) {
  sink = startSink(ACME_SECRET);
  smsc = await startSmsc(sim);
  app = await startLoggedApp({
    carriers: { sms: { kind: "smpp", host: "127.0.0.1", port: smsc.port, tps: 1000, reconnect_min_ms: 100, reconnect_max_ms: 500 } },
  });
  await waitFor("SMPP bound", () => smsc!.openSessions > 0);
  return { smsc, app, sink };
}

async function sendSms(to: string) {
  const r = await post(app!.url, "/sms", sendBody({ to, text: `to ${to}`, callback_url: sink!.url, subject: undefined, fallback_text: undefined }));
  expect(r.status).toBe(200);
  return r.json.id as string;
}

const stateOf = async (id: string) => (await app!.store.getMessage(id))?.state;

describe("default receipt_id_base over SMPP", () => {
  for (const idBase of ["resp_hex_receipt_dec", "resp_dec_receipt_hex"] as const) {
    test(`${idBase}: the receipt finds its message and one delivered webhook goes out`, async () => {
      const { smsc, sink } = await gateway({ idBase, sendReceipts: true, receiptDelayMs: 20, receiptFormat: idBase === "resp_dec_receipt_hex" ? "text" : "tlv" });
      const id = await sendSms("0012025550140");
      const events = await waitFor("delivered webhook", () => sink.byMessage(id).length > 0 && sink.byMessage(id));
      expect(events[0]).toMatchObject({ status: "delivered", carrier_message_id: idBase === "resp_hex_receipt_dec" ? "F4240" : "1000000" });
      // The two sides really differ on the wire.
      expect(smsc.submits[0]!.respId).not.toBe(smsc.submits[0]!.receiptId);
      expect((await scrape(app!.url)).sum("gateway_receipts_total", { result: "unmatched" })).toBe(0);
    });
  }

  test("a receipt the SMSC sends right behind its submit answer is matched at once, not held", async () => {
    // The simulator writes the receipt straight after the submit_sm_resp: both usually come in one read.
    const { sink } = await gateway({ idBase: "dec", sendReceipts: true });
    const ids = await Promise.all(["0012025550144", "0012025550145", "0012025550146", "0012025550147"].map(sendSms));
    await waitFor("delivered webhooks", () => ids.every((id) => sink.byMessage(id).some((e) => e.status === "delivered")));
    const m = await scrape(app!.url);
    expect(m.sum("gateway_receipts_total", { result: "applied" })).toBe(ids.length);
    expect(m.sum("gateway_receipts_total", { result: "unmatched" })).toBe(0);
  });

  test("an id two messages answer to (26 as written, 26 decimal = 1A hex) goes to the one sent to the receipt's handset", async () => {
    // Hex answers: the first submit is id 26 ("1A"), the second id 38 ("26"); receipts come by hand, in decimal.
    const { smsc } = await gateway({ idBase: "hex", idNumber: (n) => (n === 1 ? 26 : 38) });
    const a = await sendSms("0012025550141");
    await waitFor("a submitted", async () => (await stateOf(a)) === "submitted");
    const b = await sendSms("0012025550142");
    await waitFor("b submitted", async () => (await stateOf(b)) === "submitted");
    expect(smsc.submits.map((s) => s.respId)).toEqual(["1A", "26"]);

    // "26" is b's id as written and a's read as decimal; b was sent nearer the receipt, a to its handset.
    expect(await smsc.sendReceipt({ id: "26", from: smsc.submits[0]!.destAddr, format: "text" })).toBe(0);
    await waitFor("a delivered", async () => (await stateOf(a)) === "delivered");
    expect(await stateOf(b)).toBe("submitted");

    expect(await smsc.sendReceipt({ id: "38", from: smsc.submits[1]!.destAddr, format: "text" })).toBe(0);
    await waitFor("b delivered", async () => (await stateOf(b)) === "delivered");
    for (const id of [a, b]) expect((await waitFor("webhook", () => sink!.byMessage(id).length > 0 && sink!.byMessage(id)))[0]).toMatchObject({ status: "delivered" });
  });

  test("a receipt that matches nothing is counted, listed by the admin API and the CLI, and applied when its submit comes", async () => {
    const { smsc, app } = await gateway({ idBase: "resp_hex_receipt_dec" });
    // The SMSC reports 1000000 (decimal) before the gateway has sent anything.
    expect(await smsc.sendReceipt({ id: "1000000", from: "12025550143", format: "text" })).toBe(0);
    expect((await scrape(app.url)).get("gateway_receipts_total", { carrier: "sms", outcome: "delivered", result: "unmatched" })).toBe(1);
    const listed = await adminFetch(app.url, "/admin/receipts/unmatched");
    expect(listed.status).toBe(200);
    expect(listed.json.unmatched_receipts).toHaveLength(1);
    expect(listed.json.unmatched_receipts[0]).toMatchObject({ carrier: "sms", receipt: { carrierMessageId: "1000000", outcome: "delivered", to: "12025550143" } });
    expect([...listed.json.unmatched_receipts[0].carrierIds].sort()).toEqual(["1000000", "16777216", "F4240"]);
    const out: string[] = [];
    expect(await runAdmin(["--data", app.dir, "unmatched-receipts"], { out: (s) => out.push(s), err: (s) => out.push(s) })).toBe(0);
    expect(JSON.parse(out.join("\n"))).toEqual(listed.json.unmatched_receipts);

    // The submit answer says F4240: the held receipt finishes the message without another receipt.
    const id = await sendSms("0012025550143");
    const events = await waitFor("delivered webhook", () => sink!.byMessage(id).length > 0 && sink!.byMessage(id));
    expect(events[0]).toMatchObject({ status: "delivered", carrier_message_id: "F4240" });
    expect(smsc.submits[0]!.respId).toBe("F4240");
    expect((await adminFetch(app.url, "/admin/receipts/unmatched")).json.unmatched_receipts).toEqual([]);
  });
});
