// Which engine the config names: SQLite embedded (one node, the zero-setup default) or PostgreSQL.
import type { Store, StoreOptions } from "./index.ts";
import { connect, migratePostgres, PostgresStore } from "./postgres/store.ts";
import type { WalSync } from "./sqlite/db.ts";
import { migrateSqlite, SqliteStore, type SqliteOptions } from "./sqlite/store.ts";

export type { WalSync };

export interface StoreSettings {
  kind: "sqlite" | "postgres";
  path: string;
  url: string;
}

/**
 * Opens the configured store, applying its migrations first. `nodeId` null: a short-lived tool (the
 * admin command), which takes part in no claims and sends no heartbeat.
 */
export async function openStore(settings: StoreSettings, nodeId: string | null, opts: StoreOptions & Omit<SqliteOptions, keyof StoreOptions>): Promise<Store> {
  if (settings.kind === "postgres") return PostgresStore.open({ ...opts, url: settings.url, nodeId });
  return SqliteStore.open(settings.path, { ...opts, nodeId });
}

/** Applies the schema migrations and nothing else (`mms-gateway migrate`). */
export async function migrateStore(settings: StoreSettings): Promise<{ from: number; to: number }> {
  if (settings.kind === "sqlite") return migrateSqlite(settings.path);
  const sql = connect(settings.url, 1);
  try {
    return await migratePostgres(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
