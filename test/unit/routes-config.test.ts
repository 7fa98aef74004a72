// [carriers.NAME], [[routes]] and inbound_numbers: what check-config accepts and every problem it names.
import { describe, expect, test } from "bun:test";
import { ConfigError, carrierEntries, parseConfigText } from "../../src/config.ts";

function problems(text: string): string[] {
  try {
    parseConfigText(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

const inbound = `[inbound.mm7]\nusername = "mmsc"\npassword = "p"\n`;
const account = (id: string, extra = "") => `[[accounts]]\nid = "${id}"\nheaders = { "Chan-Api-Key" = "k-${id}" }\ncallback_secret = "s"\n${extra}\n`;

describe("named carriers", () => {
  test("the old two-carrier file means what it meant: two carriers, no routes", () => {
    const c = parseConfigText(`[carriers.mms]\nkind = "mm7"\nurl = "http://127.0.0.1:1/mm7"\n[carriers.sms]\nkind = "smpp"\nport = 2775\n[inbound.mm7]\nusername = "mmsc"\npassword = "p"\n`);
    expect(carrierEntries(c).map((e) => [e.key, e.channel, e.section.name, e.section.kind])).toEqual([
      ["mms", "mms", "mms", "mm7"],
      ["sms", "sms", "sms", "smpp"],
    ]);
    expect(c.routes).toEqual([]);
  });

  test("channel follows from kind; sandbox says it; the name defaults to the table key; keys are the channel's", () => {
    const c = parseConfigText(
      `${inbound}[carriers.uk_a]\nkind = "smpp"\nport = 2776\nwindow = 4\n[carriers.mmsc2]\nkind = "mm7"\nurl = "http://127.0.0.1:1/mm7"\n[carriers.test_sms]\nkind = "sandbox"\nchannel = "sms"\n`,
    );
    const named = carrierEntries(c).slice(2);
    expect(named.map((e) => [e.key, e.channel, e.section.name])).toEqual([
      ["uk_a", "sms", "uk_a"],
      ["mmsc2", "mms", "mmsc2"],
      ["test_sms", "sms", "test_sms"],
    ]);
    expect((named[0]!.section as { window: number }).window).toBe(4);
    expect((named[1]!.section as { max_message_bytes: number }).max_message_bytes).toBe(307200);
  });

  test("each problem of a named carrier is named", () => {
    const p = problems(
      `[carriers.a]\nkind = "sandbox"\n[carriers.b]\nkind = "smpp"\nchannel = "mms"\n[carriers.c]\nkind = "smpp"\nurl = "x"\n[carriers.d]\nport = 1\n[carriers.e]\nkind = "mm7"\n[carriers.f]\nkind = "smpp"\nname = "sms"\n`,
    ).join("\n");
    expect(p).toContain('carriers.a.channel: required for kind "sandbox"');
    expect(p).toContain('carriers.b.channel: kind "smpp" serves "sms"');
    expect(p).toContain("carriers.c.url: unknown key");
    expect(p).toContain("carriers.d.kind: required");
    // Shape problems stop before semantic ones, so e and f are checked in a file without the others.
    const q = problems(`${inbound}[carriers.e]\nkind = "mm7"\n[carriers.f]\nkind = "smpp"\nname = "sms"\n`).join("\n");
    expect(q).toContain('carriers.e.url: required for kind = "mm7"');
    expect(q).toContain('carriers.f.name: must differ from carriers.sms.name ("sms")');
  });
});

describe("routes", () => {
  const carriers = `${inbound}[carriers.uk_a]\nkind = "smpp"\nsystem_id = "a"\n[carriers.uk_b]\nkind = "smpp"\nsystem_id = "b"\n[carriers.mmsc2]\nkind = "mm7"\nurl = "http://127.0.0.1:1/mm7"\n`;

  test("two carriers on one SMSC account are refused: either one's receipts could arrive on the other's bind", () => {
    const same = `${inbound}[carriers.uk_a]\nkind = "smpp"\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "gw"\n[carriers.uk_b]\nkind = "smpp"\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "gw"\n`;
    expect(problems(`${account("acme")}${same}`)).toContainEqual(expect.stringMatching(/^carriers\.uk_b: same SMSC account as carriers\.uk_a \(127\.0\.0\.1:2775, system_id "gw"\)/));
    const apart = `${inbound}[carriers.uk_a]\nkind = "smpp"\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "gw"\n[carriers.uk_b]\nkind = "smpp"\nhost = "127.0.0.1"\nport = 2776\nsystem_id = "gw"\n`;
    expect(problems(`${account("acme")}${apart}`).filter((x) => x.includes("same SMSC account"))).toEqual([]);
  });

  test("a valid route table passes", () => {
    const c = parseConfigText(
      `${account("acme")}${carriers}[[routes]]\nchannel = "sms"\nprefixes = ["44"]\ncarriers = ["uk_a", "uk_b"]\n[[routes]]\nchannel = "sms"\naccounts = ["acme"]\ncarriers = ["sms", "uk_b"]\nretry_elsewhere = ["temporary", "permanent"]\n[[routes]]\nchannel = "mms"\nprefixes = ["1"]\ncarriers = ["mmsc2", "mms"]\n`,
    );
    expect(c.routes.map((r) => r.carriers)).toEqual([["uk_a", "uk_b"], ["sms", "uk_b"], ["mmsc2", "mms"]]);
    expect(c.routes[0]!.retry_elsewhere).toEqual(["temporary"]);
  });

  test("check-config names every route problem at once", () => {
    const p = problems(
      `${account("acme")}${carriers}` +
        `[[routes]]\nchannel = "sms"\nprefixes = ["44"]\ncarriers = ["uk_a", "nope"]\n` +
        `[[routes]]\nchannel = "sms"\nprefixes = ["+33", "3x"]\ncarriers = ["mmsc2"]\n` +
        `[[routes]]\nchannel = "sms"\nprefixes = ["447"]\ncarriers = ["uk_b"]\n` +
        `[[routes]]\nchannel = "mms"\naccounts = ["ghost"]\ncarriers = ["mms"]\n` +
        `[[routes]]\nchannel = "sms"\naccounts = ["acme"]\nprefixes = ["4412"]\ncarriers = ["uk_b"]\n`,
    );
    expect(p).toEqual([
      'routes.0.carriers.1: unknown carrier "nope" (no [carriers.nope])',
      'routes.1.carriers.0: carrier "mmsc2" serves mms, the route is for sms',
      'routes.1.prefixes.0: a prefix is digits only (got "+33")',
      'routes.1.prefixes.1: a prefix is digits only (got "3x")',
      "routes.2: never used: routes.0 matches every message it would",
      'routes.3.accounts.0: unknown account "ghost"',
      "routes.4: never used: routes.0 matches every message it would",
    ]);
  });

  test("retry_elsewhere takes only temporary and permanent", () => {
    expect(problems(`[[routes]]\nchannel = "sms"\ncarriers = ["sms"]\nretry_elsewhere = ["always"]\n`).join("\n")).toContain("routes.0.retry_elsewhere.0");
  });
});

describe("inbound_numbers", () => {
  test("exact numbers and prefix* are accepted; a bad one, a number of two accounts, and numbers without inbound_url are named", () => {
    const ok = parseConfigText(account("a", `inbound_url = "http://127.0.0.1:1/in"\ninbound_numbers = ["18885550100", "+1999*"]`));
    expect(ok.accounts[0]!.inbound_numbers).toEqual(["18885550100", "+1999*"]);
    const p = problems(
      account("a", `inbound_url = "http://127.0.0.1:1/in"\ninbound_numbers = ["1888*", "12x"]`) + account("b", `inbound_numbers = ["1888*"]`),
    );
    expect(p).toEqual([
      'accounts.0.inbound_numbers.1: expected digits, optionally ending in * for a prefix (got "12x")',
      'accounts.1.inbound_numbers.0: "1888*" is also account "a"\'s',
      "accounts.1.inbound_numbers: set inbound_url too, or MO to these numbers has nowhere to go",
    ]);
  });
});
