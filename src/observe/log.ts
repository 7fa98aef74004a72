// The JSON logger, and each adapter's view of it.
import pino, { type DestinationStream, type Logger } from "pino";
import type { Logger as AdapterLogger } from "../../adapters/carrier.ts";
import type { Config } from "../config.ts";
import type { Activity } from "./activity.ts";

/** The JSON logger; warnings and errors are also kept by `activity` for the status page. */
// Synchronous stdout: the lines just before process.exit() (shutdown, second signal) must not be lost.
export function createLogger(config: Config, activity?: Activity, destination: DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  const streams: pino.StreamEntry[] = [{ level: config.log.level === "silent" ? "fatal" : (config.log.level as pino.Level), stream: destination }];
  if (activity) streams.push({ level: "warn", stream: activity.errorStream() });
  return pino(
    {
      level: config.log.level,
      base: undefined,
      redact: { paths: ["password", "*.password", "callback_secret", "*.callback_secret", "headers.authorization"], censor: "<redacted>" },
    },
    pino.multistream(streams),
  );
}

/**
 * An adapter's logger: every line names its carrier, once (the adapters name it on most lines
 * themselves; a pino child would write the key twice).
 */
export function carrierLog(log: Logger, carrier: string): AdapterLogger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (obj: object, msg?: string): void => {
      if (log.isLevelEnabled(level)) log[level]({ carrier, ...obj }, msg);
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
