// A throwaway PostgreSQL database per test run: GATEWAY_TEST_PG_URL when set, else the local server
// (127.0.0.1:5432, trust auth, user postgres), else a server this run starts for itself (pg-server.ts).
// Each database has a random name and is dropped at the end.
import postgres from "postgres";
import { startPostgres } from "./pg-server.ts";

const LOCAL = "postgres://postgres@127.0.0.1:5432/postgres";

async function reachable(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * The server the tests use: `given` (GATEWAY_TEST_PG_URL) as it is, else `local` when it answers, else a
 * throwaway one started now and stopped when the process exits; null when none can be had.
 */
export async function testServer(given: string | undefined, local: string): Promise<{ url: string; stop?: () => Promise<void> } | null> {
  if (given) return (await reachable(given)) ? { url: given } : null;
  if (await reachable(local)) return { url: local };
  try {
    const server = await startPostgres();
    process.once("exit", () => server.stopSync());
    return { url: server.url("postgres"), stop: () => server.stop() };
  } catch {
    return null;
  }
}

const server = await testServer(process.env.GATEWAY_TEST_PG_URL, LOCAL);
const base = server?.url ?? process.env.GATEWAY_TEST_PG_URL ?? LOCAL;

/** Whether PostgreSQL tests can run here; under CI its absence is a failure, never a skip. */
export const pgAvailable = server !== null;
if (!pgAvailable && process.env.CI) throw new Error(`PostgreSQL is not reachable at ${base.replace(/:[^:@/]*@/, ":***@")} and none could be started; CI must not skip its tests`);

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `gw_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end({ timeout: 1 });
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = postgres(base, { max: 1, onnotice: () => {} });
      await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await sql.end({ timeout: 1 });
    },
  };
}
