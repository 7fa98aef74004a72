// A PostgreSQL server of our own for one run: initdb into a temp dir, started on a free loopback port,
// removed on stop. The benchmarks use it so their figures do not depend on what else uses the shared
// server; the tests fall back on it on a machine where no PostgreSQL is reachable.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./binary.ts";

export interface PostgresServer {
  /** The URL of database `name` on this server. */
  url(name: string): string;
  createDatabase(name: string): Promise<string>;
  bin(tool: string): string;
  stop(): Promise<void>;
  /** For process exit, where nothing can be awaited. */
  stopSync(): void;
}

export async function startPostgres(): Promise<PostgresServer> {
  const config = Bun.spawnSync(["pg_config", "--bindir"], { stdout: "pipe", stderr: "pipe" });
  if (config.exitCode !== 0) throw new Error("pg_config not found: install PostgreSQL (Debian: postgresql)");
  const bindir = config.stdout.toString().trim();
  const bin = (tool: string) => join(bindir, tool);
  const dir = mkdtempSync(join(tmpdir(), "gw-pg-"));
  const data = join(dir, "data");
  // PostgreSQL will not run as root: as the postgres user then.
  const asOwner = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (asOwner.length) Bun.spawnSync(["chown", "-R", "postgres", dir]);
  chmodSync(dir, 0o755);
  const init = Bun.spawnSync([...asOwner, bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], { stderr: "pipe", stdout: "pipe" });
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  const port = freePort();
  const proc = Bun.spawn(
    [...asOwner, bin("postgres"), "-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "shared_buffers=256MB"],
    { stdout: "ignore", stderr: "pipe" },
  );
  const url = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`;
  // pg_ctl, not a signal: runuser in between does not pass one on.
  const stopSync = () => {
    Bun.spawnSync([...asOwner, bin("pg_ctl"), "stop", "-D", data, "-m", "fast", "-w"], { stdout: "ignore", stderr: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (Bun.spawnSync([bin("pg_isready"), "-h", "127.0.0.1", "-p", String(port)]).exitCode === 0) break;
    if (i > 200 || proc.exitCode !== null) {
      stopSync();
      throw new Error("the throwaway PostgreSQL did not start");
    }
    await Bun.sleep(50);
  }
  return {
    url,
    bin,
    async createDatabase(name) {
      const sql = postgres(url("postgres"), { max: 1, onnotice: () => {} });
      await sql.unsafe(`CREATE DATABASE ${name}`);
      await sql.end();
      return url(name);
    },
    async stop() {
      stopSync();
      await proc.exited;
    },
    stopSync,
  };
}
