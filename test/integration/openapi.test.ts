// GET /openapi.json: a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator),
// identical to docs/openapi.json, and true to the running gateway: every status and error code the
// intake really answers is documented under that status, and every webhook event really posted fits
// the documented event schema.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { DeliveryEventSchema } from "../../src/domain/event.ts";
import { ACME_KEY, ACME_SECRET, post, sendBody, startTestApp, waitFor } from "../support/app.ts";
import { startSink } from "../support/sink.ts";

const sink = startSink(ACME_SECRET);
let app: Awaited<ReturnType<typeof startTestApp>>;
let served: any;

beforeAll(async () => {
  app = await startTestApp();
  const r = await fetch(`${app.url}/openapi.json`);
  expect(r.headers.get("content-type")).toBe("application/json");
  served = await r.json();
});
afterAll(async () => {
  await app.stop();
  sink.stop();
});

test("served document is valid OpenAPI 3.1", async () => {
  expect(served.openapi).toBe("3.1.0");
  const result = await new Validator().validate(structuredClone(served));
  expect(result.errors).toBeUndefined();
  expect(result.valid).toBe(true);
});

test("the validator is not a rubber stamp: it rejects a broken copy", async () => {
  const broken = structuredClone(served);
  broken.paths["/mms"].post.responses["200"] = { content: {} }; // a response without its required description
  expect((await new Validator().validate(broken)).valid).toBe(false);
});

test("docs/openapi.json is what the gateway serves (regenerate with `make openapi`)", () => {
  const committed = JSON.parse(readFileSync(join(import.meta.dir, "../../docs/openapi.json"), "utf8"));
  expect(served).toEqual(committed);
});

/** Every answer the intake gives for these requests must be a documented status whose text names its error code. */
test("every status and error code the intake answers is documented", async () => {
  const mms = served.paths["/mms"].post.responses;
  const answers = [
    await post(app.url, "/mms", sendBody({ callback_url: sink.url })),
    await post(app.url, "/mms", "{not json"),
    await post(app.url, "/mms", sendBody({ to: "12" })),
    await post(app.url, "/mms", sendBody({ callback_url: "http://10.0.0.1/cb" })),
    await post(app.url, "/mms", sendBody(), { "Chan-Api-Key": "wrong" }),
    await fetch(`${app.url}/mms`, { method: "POST", headers: { "Chan-Api-Key": ACME_KEY, "content-type": "text/plain" }, body: "x" }).then(async (r) => ({
      status: r.status,
      json: await r.json(),
    })),
    await post(app.url, "/mms", sendBody({ text: "x".repeat(300_000) })),
  ];
  expect(answers.map((a) => a.status)).toEqual([200, 400, 400, 400, 401, 415, 413]);
  for (const a of answers) {
    const doc = mms[String(a.status)];
    expect(doc).toBeDefined();
    if (a.status !== 200) expect(doc.description).toContain(`${a.json.error.code}:`);
  }
  const accepted = served.paths["/mms"].post.responses["200"].content["application/json"].schema;
  expect(Object.keys(accepted.properties).sort()).toEqual(Object.keys(answers[0]!.json).sort());
  // The documented body fields are the ones the intake reads.
  const fields = Object.keys(served.components.schemas.SendMMS.properties).sort();
  expect(fields).toEqual(["callback_url", "custom_data", "fallback_text", "from", "media", "metadata", "request_id", "subject", "text", "to"]);
  expect(served.components.schemas.SendMMS.required).toEqual(["from", "to", "callback_url"]);
});

test("the webhook events the gateway posts fit the documented event schema", async () => {
  const r = await post(app.url, "/mms", sendBody({ callback_url: sink.url }));
  await waitFor("delivered event", () => sink.byMessage(r.json.id).some((e) => e.status === "delivered"));
  const documented = served.components.schemas.DeliveryEvent;
  expect(documented).toEqual(JSON.parse(JSON.stringify(DeliveryEventSchema)));
  const check = TypeCompiler.Compile(DeliveryEventSchema);
  for (const e of sink.events) expect([...check.Errors(e)].map((x) => `${x.path}: ${x.message}`)).toEqual([]);
  // A delivered event carries exactly the required fields (error is for failed events only).
  expect([...documented.required].sort()).toEqual(Object.keys(sink.byMessage(r.json.id)[0]!).sort());
  expect(served.webhooks.deliveryReport.post.requestBody.content["application/json"].schema.items.$ref).toBe("#/components/schemas/DeliveryEvent");
});

test("the compiled binary serves the same document", async () => {
  const { configFor, freePort, startBinary } = await import("../support/binary.ts");
  const { tempDir, testConfigDoc } = await import("../support/config-doc.ts");
  const dir = tempDir();
  const gw = await startBinary(configFor(dir, testConfigDoc(dir)), freePort());
  try {
    expect(await (await fetch(`${gw.url}/openapi.json`)).json()).toEqual(served);
  } finally {
    gw.proc.kill("SIGTERM");
    await gw.proc.exited;
  }
});
