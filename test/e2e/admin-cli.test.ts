// `mms-gateway admin …` on the database of a gateway that is running (both the compiled binary), on
// each engine: what the CLI writes, the running gateway picks up by itself.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ACME_KEY, ACME_SECRET, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { binaryPath, configFor, freePort, startBinary, type Running } from "../support/binary.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink } from "../support/sink.ts";

const sink = startSink(ACME_SECRET);
afterAll(() => sink.stop());

function admin(...args: string[]): { code: number; out: string; err: string; json: any } {
  const p = Bun.spawnSync([binaryPath, "admin", ...args]);
  const out = p.stdout.toString();
  let json: unknown = null;
  try {
    json = JSON.parse(out);
  } catch {
    json = null;
  }
  return { code: p.exitCode ?? -1, out, err: p.stderr.toString(), json };
}

async function send(gw: Running, channel: "mms" | "sms", extra: Record<string, unknown> = {}) {
  const body = sendBody({ callback_url: sink.url, ...(channel === "sms" ? { subject: undefined, fallback_text: undefined } : {}), ...extra });
  const r = await fetch(`${gw.url}/${channel}`, { method: "POST", headers: { "content-type": "application/json", "Chan-Api-Key": ACME_KEY }, body: JSON.stringify(body) });
  expect(r.status).toBe(200);
  return { id: ((await r.json()) as { id: string }).id, requestId: body.request_id as string };
}

const engines: { name: string; skip: boolean; store(): Promise<{ doc: Record<string, unknown>; drop(): Promise<void> }> }[] = [
  { name: "sqlite", skip: false, store: async () => ({ doc: {}, drop: async () => {} }) },
  {
    name: "postgres",
    skip: !pgAvailable,
    async store() {
      const db: TestDatabase = await createTestDatabase();
      return { doc: { store: { kind: "postgres", url: db.url }, node: { id: "admin-e2e" } }, drop: () => db.drop() };
    },
  },
];

for (const engine of engines) {
  describe.skipIf(engine.skip)(`admin CLI on ${engine.name}`, () => {
    const dir = tempDir();
    let config: string;
    let gw: Running;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      const store = await engine.store();
      drop = store.drop;
      config = configFor(dir, testConfigDoc(dir, { log: { level: "warn" }, ...store.doc }));
      gw = await startBinary(config, freePort());
    }, 30000);
    afterAll(async () => {
      gw.proc.kill("SIGTERM");
      await gw.proc.exited;
      await drop();
    }, 30000);

    test("dead-letters lists them; requeue (one, then all) gets them delivered by the running gateway", async () => {
      sink.answer = 400;
      const a = await send(gw, "sms");
      const b = await send(gw, "sms");
      const dead = await waitFor("2 dead letters", () => {
        const r = admin("--config", config, "dead-letters");
        return r.code === 0 && r.json.length === 2 && r.json;
      });
      expect(dead.map((d: { message_id: string }) => d.message_id).sort()).toEqual([a.id, b.id].sort());
      expect(admin("--config", config, "dead-letters", "--limit", "1").json).toHaveLength(1);

      sink.answer = 200;
      const first = dead.find((d: { message_id: string }) => d.message_id === a.id);
      expect(admin("--config", config, "requeue", String(first.seq)).json).toEqual({ requeued: 1 });
      await waitFor("requeued one delivered", () => sink.byMessage(a.id).length === 1);
      expect(sink.byMessage(b.id)).toHaveLength(0);
      // --data names a SQLite directory; a PostgreSQL store is named by its config only.
      expect(admin(...(engine.name === "sqlite" ? ["--data", dir] : ["--config", config]), "requeue", "all").json).toEqual({ requeued: 1 });
      await waitFor("the rest delivered", () => sink.byMessage(b.id).length === 1);
      expect(admin("--config", config, "dead-letters").json).toEqual([]);
    }, 30000);

    test("retry-failed sends matching failed messages again; show displays the whole story, by id or request_id", async () => {
      const failed = await send(gw, "mms", { to: "0012025550102" });
      await waitFor("failed", () => sink.byMessage(failed.id).length === 1);
      expect(admin("--config", config, "retry-failed", "--error", "other:code").json).toEqual({ retried: 0 });
      expect(admin("--config", config, "retry-failed", "--error", "sandbox:rejected", "--account", "acme", "--since", new Date(Date.now() - 3_600_000).toISOString()).json).toEqual({ retried: 1 });
      // The sandbox refuses this number for good: the running gateway tries again and it fails again.
      await waitFor("second failure reported", () => sink.byMessage(failed.id).length === 2);
      const shown = admin("--config", config, "show", failed.requestId);
      expect(shown.code).toBe(0);
      expect(shown.json).toMatchObject({ id: failed.id, state: "failed", attempts: 2 });
      expect(shown.json.history.map((h: { detail?: string }) => h.detail)).toContain("operator retry");
      expect(admin("--config", config, "show", failed.id).json.id).toBe(failed.id);
      const missing = admin("--config", config, "show", "msg_nope");
      expect(missing.code).toBe(1);
      expect(missing.err).toContain("no message");
    }, 30000);

    test("unmatched-receipts reads the running gateway's held receipts (none: the sandbox's receipts all match)", () => {
      const r = admin("--config", config, "unmatched-receipts", "--limit", "5");
      expect(r.code).toBe(0);
      expect(r.json).toEqual([]);
    });

    test("purge, and usage errors exit 2 naming the problem", async () => {
      expect(admin("--config", config, "purge", "--older-than", "1").json).toEqual({ dedup: 0, messages: 0, events: 0 });
      const bad = admin("--config", config, "purge");
      expect(bad.code).toBe(2);
      expect(bad.err).toContain("--older-than: expected a positive whole number");
      expect(admin("show", "x").code).toBe(2);
      expect(admin("--config", config, "frobnicate").code).toBe(2);
      expect(admin("--config", config, "retry-failed", "--since", "last tuesday").code).toBe(2);
      expect(admin("--data", tempDir(), "dead-letters").err).toContain("no database there");
    }, 30000);
  });
}
