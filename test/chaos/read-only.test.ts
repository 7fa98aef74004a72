// Storage that stops taking writes under a running gateway. A remount read-only is refused by Linux
// while the database is open for writing, so the files are made immutable instead (`chattr +i`):
// every write on the open descriptors then fails with EPERM, as on a read-only device. The gateway
// must answer 503 with Retry-After, lose no earlier 200, and resume by itself once writes work again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort, type Running } from "../support/binary.ts";
import { postJson, readDb, startGateway, stopGateway, summary, tempDir, testConfigDoc, until } from "./harness.ts";

const dir = tempDir("gw-chaos-ro-");
const files = ["gateway.db", "gateway.db-wal"].map((f) => join(dir, f));
let gw: Running | null = null;
let n = 0;

const chattr = (flag: "+i" | "-i") => Bun.spawnSync(["chattr", flag, ...files.filter(existsSync)], { stderr: "pipe" });
const send = () =>
  postJson(`${gw!.url}/sms`, { to: `0014155${String(++n).padStart(6, "0")}`, from: "18885551234", text: "read-only test", request_id: `ro-${n}`, callback_url: "http://127.0.0.1:9/unused" }, { timeoutMs: 15000 });

beforeAll(async () => {
  gw = await startGateway(dir, testConfigDoc(dir, { delivery: { paused: true } }), freePort());
});

afterAll(async () => {
  chattr("-i");
  await stopGateway(gw);
  rmSync(dir, { recursive: true, force: true });
});

test("writes refused under a running gateway → 503, then it resumes by itself", async () => {
  const accepted: string[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await send();
    expect(r?.status).toBe(200);
    accepted.push(r!.json.request_id);
  }
  const set = chattr("+i");
  if (set.exitCode !== 0) {
    // Only a filesystem without immutable files gets here; CI's machines have them, so there it fails.
    console.log(`chaos: read-only SKIPPED: chattr +i not supported here (${set.stderr.toString().trim()})`);
    expect(process.env.CI).toBeUndefined();
    return;
  }
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
