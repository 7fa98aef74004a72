#!/usr/bin/env bun
// The command line: picks the command in cli/ and turns its result into the exit code.
import pkg from "../package.json" with { type: "json" };
import { ConfigError } from "./config.ts";
import { adminUsage, runAdmin } from "./cli/admin.ts";
import { checkConfig } from "./cli/check-config.ts";
import { exampleConfig } from "./cli/example-config.ts";
import { migrate } from "./cli/migrate.ts";
import { runProbe } from "./cli/probe.ts";
import { serve } from "./cli/serve.ts";
import { runWebhookSink } from "./cli/webhook-sink.ts";

const usage = `mms-gateway ${pkg.version}

usage:
  mms-gateway serve [--config FILE] [--listen HOST:PORT] [--data DIR]
  mms-gateway check-config FILE
  mms-gateway probe --config FILE     (connects and authenticates to each carrier, sends nothing; exit 1 if any fails)
  mms-gateway migrate [--config FILE]  (applies the store's schema; serve does too, under a lock)
  mms-gateway version
  mms-gateway example-config          (prints config.example.toml: every key with its default)
${adminUsage}
  mms-gateway webhook-sink --secret SECRET [--listen HOST:PORT] [--bearer]
`;

/** Each command's exit code; -1 for the ones that keep running (serve, webhook-sink). */
async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case "serve":
        return await serve(args);
      case "check-config":
        return await checkConfig(args);
      case "probe":
        return await runProbe(args);
      case "admin":
        return await runAdmin(args);
      case "migrate":
        return await migrate(args);
      case "example-config":
        process.stdout.write(exampleConfig());
        return 0;
      case "webhook-sink":
        return runWebhookSink(args);
      case "version":
      case "--version":
        console.log(`mms-gateway ${pkg.version} (bun ${Bun.version})`);
        return 0;
      case undefined:
      case "help":
      case "--help":
        console.log(usage);
        return cmd === undefined ? 2 : 0;
      default:
        console.error(`unknown command "${cmd}"\n\n${usage}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    console.error((e as Error).stack ?? String(e));
    return 1;
  }
}

// No top-level await: `--bytecode` compiles to CommonJS, which has none.
void main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
});
