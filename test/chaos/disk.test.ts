// Storage faults against the compiled binary, with its database on a small tmpfs this test mounts
// (we run as root in the test sandbox; without mount permission the tests are reported skipped, and
// fail under CI).
// Full disk → 503 with Retry-After, nothing corrupted, and the gateway resumes by itself once space
// returns; read-only remount → 503, resumes after remount rw.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { freePort, type Running } from "../support/binary.ts";
import { skipWithout } from "../support/capability.ts";
import { postJson, startGateway, stopGateway, summary, tempDir, testConfigDoc, until } from "./harness.ts";

const root = tempDir("gw-chaos-disk-");
const mnt = join(root, "tmpfs");
let gw: Running | null = null;
let port = 0;
let n = 0;

function sh(cmd: string[]): { ok: boolean; err: string } {
  const p = Bun.spawnSync(cmd, { stderr: "pipe" });
  return { ok: p.exitCode === 0, err: p.stderr.toString() };
}

// Mounted when the file loads, so the tests can be declared skipped without it (never under CI).
Bun.spawnSync(["mkdir", "-p", mnt]);
const mount = sh(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
const mounted = mount.ok;
const skip = skipWithout(mounted, `mount -t tmpfs (${mount.err.trim()})`, "chaos/disk.test.ts");

beforeAll(async () => {
  // Under CI a missing mount permission must fail the tests, not skip them.
  if (!mounted) throw new Error(`mount -t tmpfs failed: ${mount.err.trim()}`);
  port = freePort();
  const doc = testConfigDoc(mnt, { store: { path: join(mnt, "gateway.db") }, delivery: { paused: true } });
  gw = await startGateway(root, doc, port);
});

afterAll(async () => {
  await stopGateway(gw);
  if (mounted) {
    sh(["mount", "-o", "remount,rw", mnt]);
    const u = sh(["umount", mnt]);
    if (!u.ok) sh(["umount", "-l", mnt]);
  }
  rmSync(root, { recursive: true, force: true });
});

const send = () =>
  postJson(`${gw!.url}/sms`, { to: `0014155${String(++n).padStart(6, "0")}`, from: "18885551234", text: "disk ".repeat(50), request_id: `disk-${n}`, callback_url: "http://127.0.0.1:9/unused" }, { timeoutMs: 15000 });

function fill(path: string): number {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(16384, 0x61);
  let total = 0;
  try {
    for (;;) total += writeSync(fd, chunk);
  } catch {
    // ENOSPC: the disk is full; fill the last few bytes too
    const one = Buffer.alloc(1);
    try {
      for (;;) total += writeSync(fd, one);
    } catch {
      /* full */
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

function integrity(): string {
  const db = new Database(join(mnt, "gateway.db"), { readonly: true });
  try {
    return (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
  } finally {
    db.close();
  }
}

test.skipIf(skip)("disk full → 503 + Retry-After, no corruption, resumes by itself when space returns", async () => {
  const ok0 = await send();
  expect(ok0?.status).toBe(200);
  const filler = join(mnt, "filler");
  const filled = fill(filler);
  // The WAL may still have room for a few writes; keep sending until the disk says no (bounded).
  const answers: number[] = [];
  let first503: { retryAfter: string | null; code: string } | null = null;
  for (let i = 0; i < 400 && !first503; i++) {
    const a = await send();
    answers.push(a?.status ?? 0);
    if (a?.status === 503) first503 = { retryAfter: a.headers.get("retry-after"), code: a.json?.error?.code };
    else if (a?.status !== 200) throw new Error(`unexpected ${a?.status} ${a?.text}`);
  }
  const accepted = answers.filter((s) => s === 200).length;
  const again = await send();
  const ready = await fetch(`${gw!.url}/readyz`);
  rmSync(filler);
  const t = Date.now();
  await until("accepting again", async () => (await send())?.status === 200, 30000, 200);
  const resumeMs = Date.now() - t;
  const alive = gw!.proc.exitCode === null;
  summary(
    `chaos: disk full tmpfs=2m filler_bytes=${filled} accepted_before_503=${accepted} first_503=${JSON.stringify(first503)} second_answer=${again?.status} readyz_while_full=${ready.status} ` +
      `resumed_after_ms=${resumeMs} process_alive=${alive}`,
  );
  expect(first503).not.toBeNull();
  expect(first503!.retryAfter).toBe("2"); // server.retry_after_s of the test config
  expect(first503!.code).toBe("storage_unavailable");
  expect(again?.status).toBe(503);
  expect(ready.status).toBe(503);
  expect(alive).toBe(true);
  // Every 200 is in the database, and the file is sound.
  expect(integrity()).toBe("ok");
}, 120000);

test.skipIf(skip)("read-only filesystem: live remount is refused by the kernel while SQLite holds it open; start on ro → refused or 503; rw again → resumes, every 200 kept", async () => {
  const acked: string[] = [];
  const a0 = await send();
  expect(a0?.status).toBe(200);
  acked.push(a0!.json.id);
  // Linux refuses `remount,ro` (EBUSY) while any file on it is open for writing, which the running
  // gateway's database always is: a live read-only switch cannot happen to it this way.
  const live = sh(["mount", "-o", "remount,ro", mnt]);
  await stopGateway(gw);
  gw = null;
  expect(sh(["mount", "-o", "remount,ro", mnt]).ok).toBe(true);
  let startOnRo = "";
  const answers: number[] = [];
  try {
    gw = await startGateway(root, testConfigDoc(mnt, { store: { path: join(mnt, "gateway.db") }, delivery: { paused: true } }), port);
    for (let i = 0; i < 3; i++) answers.push((await send())?.status ?? 0);
    startOnRo = `started; answers=${JSON.stringify(answers)}`;
    await stopGateway(gw);
  } catch (e) {
    startOnRo = `refused to start: ${String((e as Error).message).split("\n").find((l) => /readonly|read-only|SQLITE|EROFS/i.test(l))?.slice(0, 160) ?? "exited"}`;
  }
  gw = null;
  expect(sh(["mount", "-o", "remount,rw", mnt]).ok).toBe(true);
  gw = await startGateway(root, testConfigDoc(mnt, { store: { path: join(mnt, "gateway.db") }, delivery: { paused: true } }), port);
  const a1 = await send();
  if (a1?.status === 200) acked.push(a1.json.id);
  await stopGateway(gw);
  gw = null;
  const ok = integrity();
  const db = new Database(join(mnt, "gateway.db"), { readonly: true });
  const missing = acked.filter((id) => !db.query("SELECT 1 FROM messages WHERE id = ?").get(id)).length;
  db.close();
  summary(`chaos: disk read-only live_remount_ro=${live.ok ? "ok" : "refused(EBUSY)"} start_on_ro="${startOnRo}" after_rw=${a1?.status} acked=${acked.length} missing=${missing} integrity=${ok}`);
  expect(answers.every((s) => s === 503)).toBe(true);
  expect(a1?.status).toBe(200);
  expect(missing).toBe(0);
  expect(ok).toBe("ok");
}, 120000);
