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

// GATEWAY_TEST_PG_SCHEMAS=1 (the mutation group `postgres` only; Stryker runs the suite once per mutant):
// each test "database" is a schema of one database this process creates, reached through `search_path` in
// its URL, and a dropped one is emptied (DELETE) and handed to the next test with its tables in place.
// CREATE DATABASE and the migrations took ~1 s per test on the shared machine. NOTIFY is per database then:
// the suites using it run one test at a time and close its stores before dropping. `bun test` runs no exit
// hook, so the shared database (named after its process) is dropped by the next run once that process is gone.
const schemaMode = process.env.GATEWAY_TEST_PG_SCHEMAS === "1";
let sharedDatabase: Promise<string> | null = null;
const emptied: string[] = [];

function sharedUrl(): Promise<string> {
  sharedDatabase ??= (async () => {
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    for (const { datname } of await admin`SELECT datname FROM pg_database WHERE datname LIKE 'gw_test_schemas_%'`) {
      const pid = Number(String(datname).split("_")[3]);
      if (!alive(pid)) await admin.unsafe(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    }
    const name = `gw_test_schemas_${process.pid}_${crypto.randomUUID().replace(/-/g, "").slice(0, 8)}`;
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.end({ timeout: 1 });
    const url = new URL(base);
    url.pathname = `/${name}`;
    return url.toString();
  })();
  return sharedDatabase;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

async function createTestSchema(): Promise<TestDatabase> {
  const url = new URL(await sharedUrl());
  let name = emptied.pop();
  if (!name) {
    name = `gw_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
    await sql.unsafe(`CREATE SCHEMA ${name}`);
    await sql.end({ timeout: 1 });
  }
  url.searchParams.set("search_path", name);
  return {
    url: url.toString(),
    async drop() {
      // The schema version stays: the next test's store finds its tables migrated. A table some
      // connection still locks: the schema is left as it is, never handed out again.
      const sql = postgres(url.toString(), { max: 1, onnotice: () => {}, connection: { lock_timeout: 5000 } });
      try {
        const tables = await sql`SELECT tablename FROM pg_tables WHERE schemaname = ${name} AND tablename <> 'gateway_schema'`;
        // DELETE, not TRUNCATE: a few rows each, and no new files to create and sync.
        await sql.begin((tx) => Promise.all(tables.map((t) => tx.unsafe(`DELETE FROM ${name}.${t.tablename}`))));
        emptied.push(name);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (schemaMode) return createTestSchema();
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
