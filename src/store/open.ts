// Which engine the config names: SQLite embedded (one node, the zero-setup default) or PostgreSQL.
import type { Store, StoreOptions } from "./index.ts";
import type { WalSync } from "./sqlite/db.ts";
import { SqliteStore, type SqliteOptions } from "./sqlite/store.ts";

export type { WalSync };

export interface StoreSettings {
  kind: "sqlite" | "postgres";
  path: string;
  url: string;
}

/** Opens the configured store, applying its migrations first. */
export async function openStore(settings: StoreSettings, opts: StoreOptions & Omit<SqliteOptions, keyof StoreOptions>): Promise<Store> {
  return SqliteStore.open(settings.path, opts);
}
