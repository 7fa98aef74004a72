// The compiled binary, as an operator runs it: restart keeps the dedup; kill -9 under load loses no 200.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SignJWT } from "jose";
import { join } from "node:path";
import { ACME_SECRET, MM7_INBOUND, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { startMmscStub } from "../peers/mm7-stub.ts";
import { binaryPath, configFor, freePort, startBinary } from "../support/binary.ts";
import { startSink } from "../support/sink.ts";
import { untilIdle } from "../support/idle.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

function gatewayConfig(dir: string, extra: Record<string, unknown> = {}) {
  const doc = testConfigDoc(dir, { log: { level: "warn" }, ...extra });
  return configFor(dir, doc);
}

describe("command line", () => {
  test("version", async () => {
    const p = Bun.spawnSync([binaryPath, "version"]);
    expect(p.exitCode).toBe(0);
    expect(p.stdout.toString()).toMatch(/^mms-gateway \d+\.\d+\.\d+/);
  });

  test("check-config reports every problem at once and exits 2", async () => {
    const dir = tempDir();
    const path = join(dir, "bad.toml");
    await Bun.write(path, `[server]\nlisten = "x"\nnope = 1\n[carriers.sms]\nkind = "fax"\n`);
    const p = Bun.spawnSync([binaryPath, "check-config", path]);
    expect(p.exitCode).toBe(2);
    const err = p.stderr.toString();
    expect(err).toContain("server.nope: unknown key");
    expect(err).toContain("carriers.sms.kind");
  });

  test("check-config and serve refuse an MM7 carrier whose inbound endpoint takes anyone", async () => {
    const dir = tempDir();
    const path = gatewayConfig(dir, { carriers: { mms: { kind: "mm7", url: "http://127.0.0.1:9/mm7" } } });
    const check = Bun.spawnSync([binaryPath, "check-config", path]);
    expect(check.exitCode).toBe(2);
    expect(check.stderr.toString()).toContain("inbound.mm7.username: required");
    const serve = Bun.spawnSync([binaryPath, "serve", "--config", path, "--listen", "127.0.0.1:0"], { timeout: 20000 });
    expect(serve.exitCode).toBe(2);
    expect(serve.stderr.toString()).toContain("inbound.mm7.allow_unauthenticated");
  });

  test("inbound.listen: the compiled gateway takes MM7 reports and serves /metrics on the second port only", async () => {
    const dir = tempDir();
    const [port, inboundPort] = [freePort(), freePort()];
    const path = gatewayConfig(dir, {
      carriers: { mms: { kind: "mm7", url: "http://127.0.0.1:9/mm7" } },
      inbound: { listen: `127.0.0.1:${inboundPort}`, mm7: MM7_INBOUND },
    });
    const gw = await startBinary(path, port);
    try {
      const report = { messageId: "not-yet-known", status: "Retrieved", ...MM7_INBOUND };
      const stub = await startMmscStub();
      try {
        expect((await stub.sendDeliveryReport(`${gw.url}/mm7`, report)).status).toBe(404);
        expect((await stub.sendDeliveryReport(`http://127.0.0.1:${inboundPort}/mm7`, report)).status).toBe(200);
      } finally {
        await stub.stop();
      }
      expect((await fetch(`${gw.url}/metrics`)).status).toBe(404);
      expect(await (await fetch(`http://127.0.0.1:${inboundPort}/metrics`)).text()).toContain("gateway_receipts_total");
    } finally {
      gw.proc.kill("SIGTERM");
      expect(await gw.proc.exited).toBe(0);
    }
  });

  test("check-config accepts a good file", async () => {
    const dir = tempDir();
    const p = Bun.spawnSync([binaryPath, "check-config", gatewayConfig(dir)]);
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
  });

  test("webhook-sink takes a report signed with its secret and refuses one signed with another", async () => {
    const url = `http://127.0.0.1:${freePort()}/`;
    const proc = Bun.spawn([binaryPath, "webhook-sink", "--secret", ACME_SECRET, "--listen", url.slice(7, -1)], { stdout: "pipe", stderr: "pipe" });
    try {
      const report = (secret: string) =>
        new SignJWT({}).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().sign(new TextEncoder().encode(secret)).then((jwt) =>
          fetch(url, { method: "POST", headers: { authorization: jwt, "content-type": "application/json" }, body: "[]" }),
        );
      await waitFor("the sink to listen", async () => {
        try {
          return (await report(ACME_SECRET)).status === 200;
        } catch {
          return false;
        }
      });
      expect((await report("not-the-secret")).status).toBe(401);
    } finally {
      proc.kill();
      await proc.exited;
    }
  });

  test("serve with no config runs on embedded defaults and prints the demo account and the status page's admin token", async () => {
    const dir = tempDir();
    const port = freePort();
    const proc = Bun.spawn([binaryPath, "serve", "--data", dir, "--listen", `127.0.0.1:${port}`], { cwd: dir, stderr: "pipe", stdout: "pipe" });
    let demo: { api_key: string; admin_token: string };
    try {
      await waitFor("listening", async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok);
      demo = (await Bun.file(join(dir, "demo-account.json")).json()) as typeof demo;
      const r = await fetch(`http://127.0.0.1:${port}/verify`, { headers: { "Chan-Api-Key": demo.api_key } });
      expect(r.status).toBe(200);
      expect(demo.admin_token).toMatch(/^[0-9a-f]{32}$/);
      // What a browser sends once the newcomer types user admin and the printed password.
      const page = await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Basic ${btoa(`admin:${demo.admin_token}`)}` } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<h1>mms-gateway</h1>");
      expect((await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Basic ${btoa("admin:wrong")}` } })).status).toBe(401);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
    const printed = await new Response(proc.stderr as ReadableStream).text();
    expect(printed).toContain("Chan-Api-Key:");
    expect(printed).toContain(`http://127.0.0.1:${port}/status  user admin, password ${demo.admin_token}`);
  });

  test("a demo-account.json from before the admin token keeps its key and secret and gains a token", async () => {
    const dir = tempDir();
    const port = freePort();
    await Bun.write(join(dir, "demo-account.json"), JSON.stringify({ api_key: "old-key", callback_secret: "old-secret" }));
    const proc = Bun.spawn([binaryPath, "serve", "--data", dir, "--listen", `127.0.0.1:${port}`], { cwd: dir, stderr: "pipe", stdout: "pipe" });
    try {
      await waitFor("listening", async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok);
      const demo = (await Bun.file(join(dir, "demo-account.json")).json()) as { api_key: string; callback_secret: string; admin_token: string };
      expect(demo).toMatchObject({ api_key: "old-key", callback_secret: "old-secret" });
      expect((await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${demo.admin_token}` } })).status).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    }
  });
});

test("restart: the same request_id gets the same answer and no new message", async () => {
  const dir = tempDir();
  const config = gatewayConfig(dir);
  const port = freePort();
  const body = sendBody({ callback_url: sink.url });
  let gw = await startBinary(config, port);
  const first = await post(gw.url, "/mms", body);
  expect(first.status).toBe(200);
  await waitFor("delivered", () => sink.byMessage(first.json.id).length === 1);
  gw.proc.kill("SIGTERM");
  expect(await gw.proc.exited).toBe(0);

  gw = await startBinary(config, port);
  try {
    const again = await post(gw.url, "/mms", body);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
  } finally {
    gw.proc.kill("SIGTERM");
    await gw.proc.exited;
  }
  const db = new Database(join(dir, "gateway.db"), { readonly: true });
  expect((db.query("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n).toBe(1);
  db.close();
  expect(sink.byMessage(first.json.id)).toHaveLength(1);
});

test("kill -9 under concurrent load: every 200 is stored exactly once", async () => {
  const dir = tempDir();
  // Reports slow enough that the kill lands while messages are in every state.
  const config = gatewayConfig(dir, { carriers: { mms: { kind: "sandbox", sandbox_report_delay_ms: 300 }, sms: { kind: "sandbox", sandbox_report_delay_ms: 300 } } });
  const port = freePort();
  let gw = await startBinary(config, port);
  const ok = new Map<string, string>(); // request_id → message id
  let stop = false;
  let errors = 0;
  const worker = async () => {
    while (!stop) {
      const body = sendBody({ callback_url: sink.url });
      try {
        const r = await post(gw.url, "/mms", body);
        if (r.status === 200) ok.set(body.request_id as string, r.json.id);
      } catch {
        errors++; // the connection died with the process: no answer, so no promise was made
      }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  await waitFor("some load", () => ok.size >= 300, 30000);
  gw.proc.kill("SIGKILL");
  await gw.proc.exited;
  stop = true;
  await Promise.all(workers);
  expect(ok.size).toBeGreaterThan(0);

  gw = await startBinary(config, port);
  try {
    const db = new Database(join(dir, "gateway.db"), { readonly: true });
    const stored = db.query("SELECT request_id, id FROM messages").all() as { request_id: string; id: string }[];
    db.close();
    const byRequest = new Map<string, string[]>();
    for (const s of stored) byRequest.set(s.request_id, [...(byRequest.get(s.request_id) ?? []), s.id]);
    for (const [rid, id] of ok) expect(byRequest.get(rid)).toEqual([id]);
    // Re-sending each acknowledged request replays the same id.
    const sample = [...ok.entries()].slice(-100);
    for (const [rid, id] of sample) {
      const r = await post(gw.url, "/mms", sendBody({ request_id: rid, callback_url: sink.url }));
      expect(r.status).toBe(200);
      expect(r.json.id).toBe(id);
    }
    // Every acknowledged message ends with exactly one final event.
    const ids = [...ok.values()];
    await waitFor("every final event", () => ids.every((id) => sink.byMessage(id).length >= 1), 60000);
    await untilIdle(join(dir, "gateway.db"), ids, 60000); // a duplicate final event would have been posted by now
    for (const id of ids) expect(sink.byMessage(id)).toHaveLength(1);
  } finally {
    gw.proc.kill("SIGTERM");
    await gw.proc.exited;
  }
}, 120000);
