// A throwaway PostgreSQL database per test run: GATEWAY_TEST_PG_URL when set, else the local server
// (127.0.0.1:5432, trust auth, user postgres). Created with a random name, dropped at the end.
import postgres from "postgres";

const base = process.env.GATEWAY_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function reachable(): Promise<boolean> {
  const sql = postgres(base, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Whether PostgreSQL tests can run here; under CI its absence is a failure, never a skip. */
export const pgAvailable = await reachable();
if (!pgAvailable && process.env.CI) throw new Error(`PostgreSQL is not reachable at ${base.replace(/:[^:@/]*@/, ":***@")}; CI must not skip its tests`);

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
