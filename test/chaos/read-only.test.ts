// Storage that stops taking writes under a running gateway. A remount read-only is refused by Linux
// while the database is open for writing, so the files are made immutable instead (`chattr +i`):
// every write on the open descriptors then fails with EPERM, as on a read-only device. The gateway
// must answer 503 with Retry-After, lose no earlier 200, and resume by itself once writes work again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort, type Running } from "../support/binary.ts";
import { canChattr, skipWithout } from "../support/capability.ts";
import { postJson, readDb, startGateway, stopGateway, summary, tempDir, testConfigDoc, until } from "./harness.ts";

const dir = tempDir("gw-chaos-ro-");
const skip = skipWithout(canChattr(), "chattr +i on the temp directory", "chaos/read-only.test.ts");
const files = ["gateway.db", "gateway.db-wal"].map((f) => join(dir, f));
let gw: Running | null = null;
let n = 0;

const chattr = (flag: "+i" | "-i") => Bun.spawnSync(["chattr", flag, ...files.filter(existsSync)], { stderr: "pipe" });
const send = () =>
  postJson(`${gw!.url}/sms`, { to: `0014155${String(++n).padStart(6, "0")}`, from: "18885551234", text: "read-only test", request_id: `ro-${n}`, callback_url: "http://127.0.0.1:9/unused" }, { timeoutMs: 15000 });

beforeAll(async () => {
  if (skip) return;
  gw = await startGateway(dir, testConfigDoc(dir, { delivery: { paused: true } }), freePort());
});

afterAll(async () => {
  if (!skip) chattr("-i");
  await stopGateway(gw);
  rmSync(dir, { recursive: true, force: true });
});

test.skipIf(skip)("writes refused under a running gateway → 503, then it resumes by itself", async () => {
  const accepted: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await send();
    expect(r?.status).toBe(200);
    accepted.push(r!.json.request_id);
  }
  const set = chattr("+i");
  expect(set.exitCode).toBe(0);
  let refused = 0;
  try {
    for (let i = 0; i < 5; i++) {
      const r = await send();
      expect(r?.status).toBe(503);
      expect(r!.headers.get("retry-after")).not.toBeNull();
      expect(r!.json.error.code).toBe("storage_unavailable");
      refused++;
    }
    const ready = await fetch(`${gw!.url}/readyz`);
    expect(ready.status).toBe(503);
  } finally {
    chattr("-i");
  }
  // Writable again: the next request is stored, with no restart.
  const back = await until("accepting again", async () => {
    const r = await send();
    return r?.status === 200 && r;
  });
  accepted.push(back.json.request_id);
  const stored = readDb(dir, (db) => {
    expect((db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check).toBe("ok");
    return db.query("SELECT request_id FROM messages").all() as { request_id: string }[];
  });
  const ids = stored.map((s) => s.request_id);
  for (const id of accepted) expect(ids.filter((x) => x === id)).toHaveLength(1);
  summary(`chaos: read-only (chattr +i under a running gateway) accepted_before=20 refused_503=${refused} lost=0 resumed=yes integrity=ok`);
});

test.skipIf(skip)("storage refusing writes while webhooks are answered: the process stays up and every event arrives after", async () => {
  // A second gateway, delivering: the sink holds each answer a little, so the outbox records outcomes
  // while the files are immutable (recording them fails; the events must stay pending, not crash it).
  const { startSink } = await import("../support/sink.ts");
  const { ACME_SECRET } = await import("../support/config-doc.ts");
  const sink = startSink(ACME_SECRET);
  sink.delayMs = 200;
  const dir2 = tempDir("gw-chaos-ro2-");
  const files2 = ["gateway.db", "gateway.db-wal"].map((f) => join(dir2, f));
  const chattr2 = (flag: "+i" | "-i") => Bun.spawnSync(["chattr", flag, ...files2.filter(existsSync)], { stderr: "pipe" });
  const gw2 = await startGateway(dir2, testConfigDoc(dir2), freePort());
  try {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await postJson(`${gw2.url}/sms`, { to: `0014156${String(i).padStart(6, "0")}`, from: "18885551234", text: "webhook under ro", request_id: `ro2-${i}`, callback_url: sink.url });
      expect(r?.status).toBe(200);
      ids.push(r!.json.id);
    }
    await until("webhooks in flight", () => sink.posts > 0);
    expect(chattr2("+i").exitCode).toBe(0);
    try {
      await Bun.sleep(1500); // answers arrive while nothing can be recorded
      expect(gw2.proc.exitCode).toBeNull();
    } finally {
      chattr2("-i");
    }
    await until("every event delivered after", () => ids.every((id) => sink.byMessage(id).length === 1), 30000);
    expect(gw2.proc.exitCode).toBeNull();
    summary(`chaos: read-only during webhooks events=${ids.length} delivered_after=${ids.length} redelivered=${sink.redelivered} process_alive=true`);
  } finally {
    chattr2("-i");
    await stopGateway(gw2);
    sink.stop();
    rmSync(dir2, { recursive: true, force: true });
  }
}, 60000);
