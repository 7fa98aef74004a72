// config.example.toml is the schema printed: the committed file is exactly what `example-config`
// prints, every key of the schema is in it, and uncommenting every key gives back the defaults.
import { expect, test } from "bun:test";
import type { TSchema } from "@sinclair/typebox";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigSchema } from "../../src/config-schema.ts";
import { defaultConfig, parseConfigText } from "../../src/config.ts";
import { exampleConfig } from "../../src/cli/example-config.ts";

const committed = readFileSync(join(import.meta.dir, "../../config.example.toml"), "utf8");

test("the committed config.example.toml is what `mms-gateway example-config` prints (regenerate it if this fails)", () => {
  expect(committed).toBe(exampleConfig());
});

test("every key of the schema is listed under its table", () => {
  const keys: string[] = [];
  const walk = (prefix: string, s: TSchema) => {
    for (const [k, v] of Object.entries(s.properties as Record<string, TSchema>)) {
      if (v.type === "object" && v.properties) walk(`${prefix}${k}.`, v);
      else if (v.type === "array" && (v.items as TSchema).properties) walk(`${prefix}${k}.`, v.items as TSchema);
      else keys.push(`${prefix}${k}`);
    }
  };
  walk("", ConfigSchema);
  expect(keys.length).toBeGreaterThan(100);
  let table = "";
  const listed = new Set<string>();
  for (const line of committed.split("\n")) {
    const t = /^#?\[\[?([\w.]+)\]\]?$/.exec(line);
    if (t) table = `${t[1]}.`;
    const k = /^#(\w+) = /.exec(line);
    if (k) listed.add(`${table}${k[1]}`);
  }
  expect(keys.filter((k) => !listed.has(k))).toEqual([]);
});

test("the file as shipped passes check-config, and with every key uncommented it means the defaults", () => {
  expect(parseConfigText(committed)).toEqual(defaultConfig());
  const uncommented = committed.replace(/^#(?=\w+ = |\[\[)/gm, "");
  const config = parseConfigText(uncommented, { ACME_API_KEY: "k", ACME_CALLBACK_SECRET: "s" });
  expect({ ...config, accounts: [], routes: [] } as typeof config).toEqual(defaultConfig());
  expect(config.accounts).toEqual([
    { id: "acme", headers: { "Chan-Api-Key": "k" }, callback_secret: "s", inbound_url: "", enabled: true, allowed_senders: [], rate_limit: 0, inbound_numbers: [] },
  ]);
  expect(config.routes).toEqual([{ channel: "sms", prefixes: ["44"], accounts: [], carriers: ["sms"], retry_elsewhere: ["temporary"] }]);
});
