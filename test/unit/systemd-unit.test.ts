// packaging/mms-gateway.service: the settings an operator relies on are there and agree with the code.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../../src/config.ts";

const unit = readFileSync(join(import.meta.dir, "../../packaging/mms-gateway.service"), "utf8");
const settings = new Map<string, string[]>();
for (const line of unit.split("\n")) {
  const m = /^(\w+)=(.*)$/.exec(line);
  if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
}
const one = (k: string) => settings.get(k)?.at(-1);

test("hardened: own user, state directory, no privilege gain, read-only system", () => {
  expect(one("DynamicUser")).toBe("yes");
  expect(one("StateDirectory")).toBe("mms-gateway");
  expect(one("NoNewPrivileges")).toBe("yes");
  expect(one("ProtectSystem")).toBe("strict");
  expect(one("ProtectHome")).toBe("yes");
  expect(one("PrivateTmp")).toBe("yes");
  expect(one("CapabilityBoundingSet")).toBe("");
});

test("reload sends SIGHUP (TLS rotation); stop waits longer than the shutdown deadline plus the outbox flush", () => {
  expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
  expect(one("KillSignal")).toBe("SIGTERM");
  const seconds = Number(one("TimeoutStopSec"));
  expect(seconds * 1000).toBeGreaterThan(defaultConfig().server.shutdown_deadline_ms + 2000);
  expect(one("ExecStart")).toContain("serve --config /etc/mms-gateway/gateway.toml");
});
