// `mms-gateway migrate`: applies the store's schema without serving (serve does it too, under a lock).
import { defaultConfig, loadConfigFile } from "../config.ts";
import { migrateStore } from "../store/open.ts";
import { flag } from "./args.ts";

export async function migrate(args: string[]): Promise<number> {
  const configPath = flag(args, "--config");
  const config = configPath ? await loadConfigFile(configPath) : defaultConfig();
  const r = await migrateStore(config.store);
  console.log(`${config.store.kind} store: schema version ${r.from} → ${r.to}`);
  return 0;
}
