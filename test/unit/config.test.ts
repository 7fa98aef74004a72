import { describe, expect, test } from "bun:test";
import { ConfigError, buildConfig, defaultConfig, parseConfigText } from "../../src/config.ts";

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(text, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe("config", () => {
  test("embedded defaults match config.md", () => {
    const c = defaultConfig();
    expect(c.server.listen).toBe("127.0.0.1:8080");
    expect(c.store.path).toBe("./data/gateway.db");
    expect(c.carriers.mms.kind).toBe("sandbox");
    expect(c.carriers.sms.kind).toBe("sandbox");
    expect(c.carriers.mms.namespace).toBe("REL-6-MM7-1-4");
    expect(c.carriers.mms.version).toBe("6.8.0");
    expect(c.carriers.mms.max_message_bytes).toBe(307200);
    expect(c.carriers.sms.window).toBe(10);
    expect(c.carriers.sms.tps).toBe(50);
    expect(c.inbound.mm7.path).toBe("/mm7");
    expect(c.webhooks.bearer_prefix).toBe(false);
    expect(c.egress.allow).toEqual([]);
    expect(c.delivery.in_flight_policy).toBe("at-most-once");
  });

  test("${ENV} is substituted in string values", () => {
    const c = parseConfigText(`[[accounts]]\nid = "acme"\nheaders = { "Chan-Api-Key" = "\${KEY}" }\ncallback_secret = "s-\${SECRET}"\n`, { KEY: "k1", SECRET: "x" });
    expect(c.accounts[0]!.headers["Chan-Api-Key"]).toBe("k1");
    expect(c.accounts[0]!.callback_secret).toBe("s-x");
  });

  test("every problem is reported at once, each naming its key", () => {
    const p = problems(
      `[server]\nlisten = "nope"\nbogus = 1\n[store]\ndedup_window_hours = "x"\n[[accounts]]\nid = "a"\nheaders = { "Chan-K" = "\${MISSING}" }\n[carriers.mms]\nkind = "mm7"\nwindow = 3\n[egress]\nallow = ["10.0.0.0"]\n`,
    );
    const text = p.join("\n");
    expect(text).toContain("server.bogus: unknown key");
    expect(text).toContain("carriers.mms.window: unknown key");
    expect(text).toContain("store.dedup_window_hours");
    expect(text).toContain("accounts.0.headers.Chan-K: environment variable MISSING is not set");
    expect(text).toContain("accounts.0.callback_secret");
    expect(p.length).toBeGreaterThanOrEqual(5);
  });

  test("semantic checks run once the shape is right", () => {
    const p = problems(`[server]\nlisten = "nope"\n[carriers.mms]\nkind = "mm7"\n[egress]\nallow = ["10.0.0.0"]\n`);
    expect(p.join("\n")).toContain("server.listen");
    expect(p.join("\n")).toContain("carriers.mms.url");
    expect(p.join("\n")).toContain("egress.allow.0");
  });

  test("TOML syntax errors are reported, not thrown raw", () => {
    expect(problems("[server\nlisten=")[0]).toContain("TOML syntax");
  });

  test("an account whose headers are all another's, and two carriers with one name, are refused", () => {
    const p = problems(
      `[[accounts]]\nid = "a"\nheaders = { "Chan-Key" = "k" }\ncallback_secret = "s"\n[[accounts]]\nid = "b"\nheaders = { "chan-key" = "k", "Chan-Project" = "p" }\ncallback_secret = "s"\n[carriers.sms]\nname = "mms"\n`,
    );
    expect(p.join("\n")).toContain(`accounts.0.headers: every header of account "a" is also account "b"'s`);
    expect(p.join("\n")).toContain("carriers.sms.name: must differ");
  });

  test("receipt_id_base: a value the adapter does not know is refused, naming the choices", () => {
    expect(problems(`[carriers.sms]\nreceipt_id_base = "hex"\n`).join("\n")).toContain("carriers.sms: receipt_id_base must be one of learn, same,");
    expect(problems(`[carriers.sms]\nreceipt_id_base = "same"\n`)).toEqual([]);
  });

  test("an MM7 carrier needs inbound credentials, or the explicit opt-out", () => {
    const mm7 = `[carriers.mms]\nkind = "mm7"\nurl = "http://127.0.0.1:9/mm7"\n`;
    expect(problems(mm7).join("\n")).toContain('inbound.mm7.username: required with carriers.mms.kind = "mm7"');
    expect(problems(`${mm7}[inbound.mm7]\nusername = "mmsc"\npassword = "p"\n`)).toEqual([]);
    // A user name alone is no secret: it is in the MMSC's configuration and often guessable.
    expect(problems(`${mm7}[inbound.mm7]\nusername = "mmsc"\n`).join("\n")).toContain("inbound.mm7.password: required");
    expect(problems(`${mm7}[inbound.mm7]\nallow_unauthenticated = true\n`)).toEqual([]);
    // The sandbox takes nothing at /mm7: no credentials needed.
    expect(problems("")).toEqual([]);
  });

  test("inbound.listen: HOST:PORT or empty, and not server.listen's address", () => {
    expect(problems(`[inbound]\nlisten = "10.0.0.5"\n`).join("\n")).toContain("inbound.listen: expected HOST:PORT or empty");
    expect(problems(`[inbound]\nlisten = "127.0.0.1:8080"\n`).join("\n")).toContain("inbound.listen: must differ from server.listen");
    expect(problems(`[inbound]\nlisten = "127.0.0.1:8081"\n`)).toEqual([]);
  });

  test("header names must be Chan-*", () => {
    expect(() => buildConfig({ accounts: [{ id: "a", headers: { "X-Key": "1" }, callback_secret: "s" }] })).toThrow(ConfigError);
  });
});
