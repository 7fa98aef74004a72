// `mms-gateway admin …`: the operator's tools on the database file itself, usable while the gateway
// runs: SQLite WAL lets this process read beside it, busy_timeout makes each small write wait its
// turn, and the gateway's loops poll the database at least every second, so requeued and retried
// work is picked up without telling the gateway.
import { join } from "node:path";
import { ConfigError, defaultConfig, durations, loadConfigFile, storeOptions, type Config } from "../config.ts";
import { OperatorInputError, positiveInt, purgeOlderThan, requeueTarget, retryFilter } from "../admin/operator.ts";
import { CapabilityMemory } from "../pipeline/capability.ts";
import { openStore } from "../store/open.ts";

export const adminUsage = `  mms-gateway admin (--config FILE | --data DIR) show ID|REQUEST_ID
  mms-gateway admin (--config FILE | --data DIR) dead-letters [--limit N]
  mms-gateway admin (--config FILE | --data DIR) unmatched-receipts [--limit N]
  mms-gateway admin (--config FILE | --data DIR) requeue all|SEQ...
  mms-gateway admin (--config FILE | --data DIR) retry-failed [--since ISO] [--error CODE] [--account ID] [--limit N]
  mms-gateway admin (--config FILE | --data DIR) purge --older-than HOURS
  mms-gateway admin (--config FILE | --data DIR) capability [forget NUMBER]`;

interface Output {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Splits `--name value` options from positional words; every option takes a value. */
function parseArgs(args: string[]): { opts: Map<string, string>; words: string[] } {
  const opts = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      words.push(a);
      continue;
    }
    const v = args[i + 1];
    if (v === undefined || v.startsWith("--")) throw new ConfigError([`${a} needs a value`]);
    opts.set(a, v);
    i++;
  }
  return { opts, words };
}

async function configFor(opts: Map<string, string>): Promise<Config> {
  const file = opts.get("--config");
  const data = opts.get("--data");
  if (!file && !data) throw new ConfigError(["admin needs --config FILE or --data DIR (the directory holding gateway.db)"]);
  const config = file ? await loadConfigFile(file) : defaultConfig();
  return data ? { ...config, store: { ...config.store, path: join(data, "gateway.db") } } : config;
}

/** Runs one admin command; returns the exit code (0 done, 1 not found, 2 bad usage). */
export async function runAdmin(args: string[], io: Output = { out: (s) => console.log(s), err: (s) => console.error(s) }): Promise<number> {
  const { opts, words } = parseArgs(args);
  const [cmd, ...rest] = words;
  const known = ["show", "dead-letters", "unmatched-receipts", "requeue", "retry-failed", "purge", "capability"];
  if (!cmd || !known.includes(cmd)) {
    io.err(`usage:\n${adminUsage}`);
    return 2;
  }
  const config = await configFor(opts);
  if (config.store.kind === "sqlite" && !(await Bun.file(config.store.path).exists())) {
    io.err(`${config.store.path}: no database there`);
    return 2;
  }
  const ms = durations(config);
  const store = await openStore(config.store, null, storeOptions(config, Date.now));
  const print = (v: unknown) => io.out(JSON.stringify(v, null, 2));
  try {
    switch (cmd) {
      case "show": {
        if (rest.length !== 1) throw new OperatorInputError("show needs one message id or request_id");
        const m = await store.describe(rest[0]!);
        if (!m) {
          io.err(`no message with id or request_id ${rest[0]}`);
          return 1;
        }
        print(m);
        return 0;
      }
      case "dead-letters": {
        const limit = opts.has("--limit") ? positiveInt(opts.get("--limit"), "--limit") : 100;
        print(await store.listDeadEvents(limit));
        return 0;
      }
      case "unmatched-receipts": {
        const limit = opts.has("--limit") ? positiveInt(opts.get("--limit"), "--limit") : 100;
        print(await store.listUnmatchedReceipts(limit));
        return 0;
      }
      case "requeue":
        print({ requeued: await store.requeueDead(requeueTarget(rest.length === 1 && rest[0] === "all" ? "all" : rest)) });
        return 0;
      case "retry-failed": {
        const filter = retryFilter({ since: opts.get("--since"), error: opts.get("--error"), account: opts.get("--account"), limit: opts.get("--limit") });
        print({ retried: await store.retryFailed(filter, ms.validityMs) });
        return 0;
      }
      case "capability": {
        const memory = new CapabilityMemory(store, ms.noMmsMemoryMs, () => {});
        if (rest.length === 0) {
          print(await memory.list());
          return 0;
        }
        if (rest.length !== 2 || rest[0] !== "forget") throw new OperatorInputError("capability takes no argument (list) or: forget NUMBER");
        const forgotten = await memory.forget(rest[1]!);
        if (!forgotten) io.err(`${rest[1]} is not remembered`);
        else print({ forgotten: true });
        return forgotten ? 0 : 1;
      }
      default: {
        const hours = positiveInt(opts.get("--older-than"), "--older-than");
        print(await purgeOlderThan(store, hours, ms.dedupWindowMs, Date.now()));
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof OperatorInputError) {
      io.err(`${e.message}\nusage:\n${adminUsage}`);
      return 2;
    }
    throw e;
  } finally {
    await store.close({ checkpoint: false });
  }
}
