// The PostgreSQL tests also run on a machine with no server at 127.0.0.1:5432: the suite starts its own.
import { expect, test } from "bun:test";
import postgres from "postgres";
import { freePort } from "../support/binary.ts";
import { testServer } from "../support/postgres.ts";

test("no PostgreSQL where the tests look: a throwaway server on loopback is started and answers", async () => {
  const server = await testServer(undefined, `postgres://postgres@127.0.0.1:${freePort()}/postgres`);
  expect(server?.stop).toBeFunction();
  try {
    const sql = postgres(server!.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`SELECT current_setting('server_version_num')::int AS v, current_setting('listen_addresses') AS listen`;
      expect(row!.v).toBeGreaterThanOrEqual(150000);
      expect(row!.listen).toBe("127.0.0.1");
    } finally {
      await sql.end({ timeout: 1 });
    }
  } finally {
    await server?.stop?.();
  }
}, 60_000);

test("a GATEWAY_TEST_PG_URL that does not answer is not swapped for another server", async () => {
  expect(await testServer(`postgres://postgres@127.0.0.1:${freePort()}/postgres`, "postgres://postgres@127.0.0.1:5432/postgres")).toBeNull();
}, 60_000);
