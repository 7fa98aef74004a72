// `mms-gateway serve`: loads the config (or makes a demo one), starts the app and ties it to signals.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { splitHostPort, startApp } from "../app.ts";
import { ConfigError, defaultConfig, loadConfigFile, type Config } from "../config.ts";
import { flag } from "./args.ts";

interface DemoSecrets {
  api_key: string;
  callback_secret: string;
  admin_token: string;
}

/**
 * With no config file: one demo account and an admin token (so /status opens right away), made once
 * and kept beside the database. A file from an older version without the token gets one added.
 */
function withDemoAccount(config: Config, dataDir: string): Config {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "demo-account.json");
  const kept = (existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {}) as Partial<DemoSecrets>;
  const demo: DemoSecrets = {
    api_key: kept.api_key ?? randomBytes(16).toString("hex"),
    callback_secret: kept.callback_secret ?? randomBytes(24).toString("hex"),
    admin_token: kept.admin_token ?? randomBytes(16).toString("hex"),
  };
  if (!kept.api_key || !kept.callback_secret || !kept.admin_token) writeFileSync(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
  const [host, port] = splitHostPort(config.server.listen);
  console.error(
    `No --config given: running on embedded defaults with sandbox carriers.\n` +
      `  demo account "demo":  header  Chan-Api-Key: ${demo.api_key}\n` +
      `                        callback secret (HS256): ${demo.callback_secret}\n` +
      `  status page:          http://${host.includes(":") ? `[${host}]` : host}:${port}/status  user admin, password ${demo.admin_token}\n` +
      `  (kept in ${file}; loopback callbacks are allowed in this mode)`,
  );
  return {
    ...config,
    admin: { token: demo.admin_token },
    accounts: [
      { id: "demo", headers: { "Chan-Api-Key": demo.api_key }, callback_secret: demo.callback_secret, inbound_url: "", enabled: true, allowed_senders: [], rate_limit: 0, inbound_numbers: [] },
    ],
    // The demo is for trying the gateway on one machine, webhook sink included.
    egress: { allow: ["127.0.0.0/8", "::1/128"] },
  };
}

/** `serve`: runs until a signal; SIGHUP reloads the TLS certificate, carriers, routes and accounts. */
export async function serve(args: string[]): Promise<number> {
  const configPath = flag(args, "--config");
  const listen = flag(args, "--listen");
  const data = flag(args, "--data");
  let config = configPath ? await loadConfigFile(configPath) : defaultConfig();
  if (listen) config = { ...config, server: { ...config.server, listen } };
  if (data) config = { ...config, store: { ...config.store, path: join(data, "gateway.db") } };
  if (!configPath) config = withDemoAccount(config, data ?? "./data");
  else if (config.accounts.length === 0) console.error("warning: no [[accounts]] configured: every request will get 401");

  let app: Awaited<ReturnType<typeof startApp>> | null = null;
  // Bun's node:net can emit a socket's read ECONNRESET from its close path after the owner (postgres.js,
  // when the database connection is cut) has already handled the close and removed its listeners; an
  // 'error' nobody listens to would end the process. The loss was handled, so such a late reset is only
  // logged. Anything else uncaught still ends the process (systemd restarts it; the database keeps the work).
  const lateReset = (e: unknown) => {
    const err = e as NodeJS.ErrnoException;
    if (err?.code === "ECONNRESET" && err.syscall === "read") {
      (app?.log ?? console).warn({ err: err.message }, "a socket reset arrived after its connection was closed; ignored");
      return;
    }
    console.error(e);
    process.exit(1);
  };
  // Bun reports it as an uncaught exception or as an unhandled rejection, depending on the path.
  process.on("uncaughtException", lateReset);
  process.on("unhandledRejection", lateReset);
  app = await startApp(config);
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      // Safe: every state is in the database; the next start picks it up.
      app.log.warn({ signal: sig }, "second signal: exiting now");
      process.exit(130);
    }
    app.log.info({ signal: sig }, "shutting down gracefully");
    app.stop().then(
      () => process.exit(0),
      (e) => {
        app.log.error({ err: String(e) }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  // SIGHUP (systemd's ExecReload): rotate the TLS certificate. A bad file is logged, the old one stays.
  process.on("SIGHUP", () => {
    try {
      const r = app.reloadTls();
      if (r !== "reloaded") app.log.info({ signal: "SIGHUP" }, `nothing to reload: ${r}`);
    } catch (e) {
      app.log.error({ signal: "SIGHUP", err: (e as Error).message }, "TLS reload failed; still serving the previous certificate");
    }
    // Carriers and routes from the file as it is now; a file that does not check out changes nothing.
    if (configPath) {
      loadConfigFile(configPath)
        .then((next) => app.reloadRouting(next))
        .catch((e) => app.log.error({ signal: "SIGHUP", err: e instanceof ConfigError ? e.problems : (e as Error).message }, "carrier and route reload refused; running as before"));
    }
  });
  return -1; // keeps running
}
