// Three compiled gateways on one PostgreSQL database (a fresh one, dropped after): replays across
// nodes, kill -9 of one node under load, and the database unreachable for a while.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import postgres from "postgres";
import { ACME_SECRET, post, sendBody, tempDir, testConfigDoc, waitFor } from "../support/app.ts";
import { binaryPath, configFor, freePort, killNodes, startBinary, startNodes, type Running } from "../support/binary.ts";
import { createTestDatabase, pgAvailable, type TestDatabase } from "../support/postgres.ts";
import { startSink, type Sink } from "../support/sink.ts";

const finals = new Set(["delivered", "failed", "sent"]);

describe.skipIf(!pgAvailable)("several gateways on one PostgreSQL (compiled binary)", () => {
  let db: TestDatabase;
  let sink: Sink;
  const nodes: Running[] = [];

  function nodeConfig(name: string, url: string): string {
    const dir = tempDir();
    return configFor(dir, testConfigDoc(dir, { log: { level: "warn" }, store: { kind: "postgres", url }, node: { id: name } }));
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    sink = startSink(ACME_SECRET);
    // Migrated once by the command, then three nodes start at the same time.
    const m = Bun.spawnSync([binaryPath, "migrate", "--config", nodeConfig("migrate", db.url)]);
    expect(m.stdout.toString()).toContain("postgres store: schema version 0 → 5");
    nodes.push(...(await startNodes(["n1", "n2", "n3"], (n) => nodeConfig(n, db.url))));
  }, 60_000);

  afterAll(async () => {
    await killNodes(nodes);
    sink?.stop();
    await db?.drop();
  }, 60_000);

  const body = (path: string) => sendBody(path === "/sms" ? { callback_url: sink.url, subject: undefined, fallback_text: undefined } : { callback_url: sink.url });
  const finalsOf = (id: string) => sink.byMessage(id).filter((e) => finals.has(e.status));

  test("a request replayed at another node gets the stored answer; each message ends in one final event", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const path = i % 2 ? "/sms" : "/mms";
      const request = body(path);
      const first = await post(nodes[i % 3]!.url, path, request);
      expect(first.status).toBe(200);
      const again = await post(nodes[(i + 1) % 3]!.url, path, request);
      expect(again.status).toBe(200);
      expect(again.json.id).toBe(first.json.id);
      ids.push(first.json.id);
    }
    await waitFor("a final event for each", () => ids.every((id) => finalsOf(id).length === 1), 30_000);
    await Bun.sleep(300);
    expect(ids.filter((id) => finalsOf(id).length !== 1)).toEqual([]);
    // Every node lists the cluster in /metrics.
    for (const n of nodes) {
      const text = await (await fetch(`${n.url}/metrics`)).text();
      expect(text.match(/^gateway_node_up\{node="n\d"\} 1$/gm)?.sort()).toEqual(['gateway_node_up{node="n1"} 1', 'gateway_node_up{node="n2"} 1', 'gateway_node_up{node="n3"} 1']);
    }
  }, 60_000);

  test("kill -9 of one node under load: every 200 ends in exactly one final event", async () => {
    const accepted: string[] = [];
    let victimKilled = false;
    const victim = nodes[0]!;
    const send = async (i: number) => {
      const alive = victimKilled ? nodes.slice(1) : nodes;
      const node = alive[i % alive.length]!;
      try {
        const path = i % 2 ? "/sms" : "/mms";
        const r = await post(node.url, path, body(path));
        if (r.status === 200) accepted.push(r.json.id);
      } catch {
        // the killed node's connection: no 200, nothing promised
      }
    };
    // Bounded: 300 requests, 8 at a time; the victim dies a third of the way in.
    for (let i = 0; i < 300; i += 8) {
      if (i >= 100 && !victimKilled) {
        victim.proc.kill("SIGKILL");
        victimKilled = true;
      }
      await Promise.all(Array.from({ length: 8 }, (_, k) => send(i + k)));
    }
    expect(accepted.length).toBeGreaterThan(250);
    // The victim's in-flight claims wait for their lease to run out, then a survivor decides them. The
    // sandbox carrier's receipts live in its node's memory: a message the victim had submitted waits,
    // `submitted`, for a receipt that died with it (a real carrier sends it to a surviving node) and
    // ends `sent` with the receipt window. Every other 200 ends in one final event.
    const sql = postgres(db.url, { max: 1 });
    try {
      const settled = async () => {
        const open = new Set(
          (await sql`SELECT id FROM messages WHERE id = ANY(${accepted}) AND state = 'submitted' AND history LIKE '%submitted to % as sbx-%' AND lease_node IS NULL`).map((r) => r.id as string),
        );
        return accepted.every((id) => finalsOf(id).length >= 1 || open.has(id)) ? open : null;
      };
      const waiting = await waitFor("a final event for every 200 not waiting on a lost sandbox receipt", settled, 45_000);
      await Bun.sleep(500);
      expect(accepted.filter((id) => finalsOf(id).length > 1)).toEqual([]);
      expect(accepted.filter((id) => finalsOf(id).length === 0 && !waiting.has(id))).toEqual([]);
      // Only the victim's own submits can wait so: a handful, not the load.
      expect(waiting.size).toBeLessThan(20);
      const [stuck] = await sql`SELECT COUNT(*)::int AS n FROM messages WHERE state IN ('accepted', 'submitting')`;
      expect(stuck!.n).toBe(0);
    } finally {
      await sql.end();
    }
  }, 90_000);

  test("the database unreachable for a while: 503 with Retry-After and not ready, then recovery on its own", async () => {
    // A node that reaches PostgreSQL through a loopback relay the test can cut.
    const pgPort = Number(new URL(db.url).port || 5432);
    const relay = startRelay(pgPort);
    const url = new URL(db.url);
    url.port = String(relay.port);
    const node = await startBinary(nodeConfig("n4", url.toString()), freePort());
    nodes.push(node);
    expect((await post(node.url, "/sms", body("/sms"))).status).toBe(200);

    relay.cut();

    const refused = await waitFor(
      "a 503",
      async () => {
        const r = await post(node.url, "/sms", body("/sms")).catch((e) => {
          throw new Error(`${e}; the node said: ${node.output().slice(-4000)}`);
        });
        expect(r.status === 200 || r.status === 503).toBe(true);
        return r.status === 503 ? r : null;
      },
      30_000,
    );
    expect(refused.headers.get("retry-after")).toBe("2");
    await waitFor("not ready", async () => (await fetch(`${node.url}/readyz`)).status === 503, 30_000);
    const metrics = await fetch(`${node.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("gateway_ready 0");

    relay.restore();
    await waitFor("ready again", async () => (await fetch(`${node.url}/readyz`)).status === 200, 30_000);
    const back = await waitFor(
      "a 200 again",
      async () => {
        const r = await post(node.url, "/sms", body("/sms"));
        return r.status === 200 ? r : null;
      },
      30_000,
    );
    await waitFor("its final event", () => finalsOf(back.json.id).length === 1, 30_000);
    relay.stop();
  }, 120_000);

  test("across all of it, one webhook POST at a time to the shared callback URL", () => {
    expect(sink.posts).toBeGreaterThan(0);
    expect(Object.fromEntries(sink.maxInFlight)).toEqual({ "/callback": 1 });
  });
});

/** A TCP relay on loopback to PostgreSQL; `cut` drops every connection and refuses new ones. */
function startRelay(target: number): { port: number; cut(): void; restore(): void; stop(): void } {
  let open = true;
  const pairs = new Set<{ client: Socket<unknown>; server: Socket<unknown> | null; pending: Uint8Array[] }>();
  const listener: TCPSocketListener<{ pair?: { client: Socket<unknown>; server: Socket<unknown> | null; pending: Uint8Array[] } }> = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        if (!open) return void client.end();
        const pair = { client: client as Socket<unknown>, server: null as Socket<unknown> | null, pending: [] as Uint8Array[] };
        client.data = { pair };
        pairs.add(pair);
        void Bun.connect({
          hostname: "127.0.0.1",
          port: target,
          socket: {
            open(server) {
              pair.server = server as Socket<unknown>;
              for (const c of pair.pending.splice(0)) server.write(c);
            },
            data(_, chunk) {
              pair.client.write(chunk);
            },
            close() {
              pair.client.end();
              pairs.delete(pair);
            },
            error() {
              pair.client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        const pair = client.data?.pair;
        if (!pair) return;
        if (pair.server) pair.server.write(chunk);
        else pair.pending.push(new Uint8Array(chunk));
      },
      close(client) {
        const pair = client.data?.pair;
        pair?.server?.end();
        if (pair) pairs.delete(pair);
      },
    },
  });
  return {
    port: listener.port,
    cut() {
      open = false;
      for (const p of pairs) {
        p.client.terminate();
        p.server?.terminate();
      }
      pairs.clear();
    },
    restore() {
      open = true;
    },
    stop() {
      listener.stop(true);
    },
  };
}
