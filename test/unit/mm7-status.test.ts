// Every row of the status tables, as the pipeline will see it (research §5).
import { describe, expect, test } from "bun:test";
import { isFallbackMmStatus, mmStatusOutcome, statusCodes } from "../../adapters/mm7/status.ts";
import { classifySubmitAnswer, parseRetryAfter } from "../../adapters/mm7/submit-response.ts";
import { faultXml, submitRspXml } from "../peers/mm7-stub.ts";
import { settings } from "../support/mm7.ts";

const ns = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";
const enc = (s: string) => new TextEncoder().encode(s);
const now = 1_700_000_000_000;
const s = settings();

function answer(status: number, body: string, contentType: string | null = "text/xml", retryAfter: string | null = null) {
  return classifySubmitAnswer(s, { status, contentType, retryAfter, body: enc(body) }, now);
}

// The expected class of every listed code; "config" rows retry (config_error_retry_after_ms > 0) and alarm.
const expected: Record<number, "ok" | "temporary" | "permanent" | "config"> = {
  1000: "ok", 1100: "ok",
  2000: "permanent", 2001: "permanent", 2002: "permanent", 2003: "permanent", 2004: "permanent", 2005: "permanent",
  2006: "permanent", 2007: "permanent", 2008: "permanent", 2009: "permanent",
  3000: "temporary", 3001: "permanent", 3002: "permanent", 3003: "permanent", 3004: "permanent", 3005: "permanent",
  4000: "temporary", 4001: "config", 4002: "config", 4003: "permanent", 4004: "permanent", 4005: "permanent",
  4006: "temporary", 4007: "permanent", 4008: "permanent",
};

// The names 23.140 gives the request status codes (as Mbuni spells them, plus the Rel-6 rows), which the
// operator reads in last_error.
const names: Record<number, string> = {
  1000: "Success", 1100: "Partial success",
  2000: "Client error", 2001: "Operation restricted", 2002: "Address Error", 2003: "Address Not Found",
  2004: "Multimedia content refused", 2005: "Message ID Not found", 2006: "LinkedID not found",
  2007: "Message format corrupt", 2008: "Application ID not found", 2009: "Reply Application ID not found",
  3000: "Server Error", 3001: "Not Possible", 3002: "Message rejected", 3003: "Multiple addresses not supported",
  3004: "Application Addressing not supported", 3005: "Command Rejected",
  4000: "General service error", 4001: "Improper identification", 4002: "Unsupported version", 4003: "Unsupported operation",
  4004: "Validation error", 4005: "Service error", 4006: "Service unavailable", 4007: "Service denied", 4008: "Application denied",
};

describe("StatusCode table", () => {
  test("the table lists exactly the expected codes", () => {
    expect(Object.keys(statusCodes).map(Number).sort()).toEqual(Object.keys(expected).map(Number).sort());
  });

  for (const [codeText, cls] of Object.entries(expected)) {
    const code = Number(codeText);
    test(`${code} in a SubmitRsp (HTTP 200), in an RSErrorRsp fault (HTTP 500)`, () => {
      for (const r of [
        answer(200, submitRspXml(ns, "6.8.0", "t", code, "x", cls === "ok" ? "MID-1" : undefined)),
        ...(cls === "ok" ? [] : [answer(500, faultXml(ns, "6.8.0", "t", code, "x", "RSErrorRsp"))]),
      ]) {
        if (cls === "ok") {
          expect(r.result).toEqual({ kind: "ok", carrierMessageIds: ["MID-1"] });
          continue;
        }
        expect(r.result.kind).toBe(cls === "config" ? "temporary" : cls);
        expect((r.result as { code: string }).code).toBe(`mm7:${code}`);
        // The operator reads the row's name and the MMSC's text in last_error.
        expect((r.result as { message: string }).message).toBe(`${code} ${names[code]}: x`);
        if (cls !== "config" && code !== 2001) expect(r.alarm).toBeUndefined();
        if (cls === "config") {
          expect(r.alarm).toContain(String(code));
          expect((r.result as { retryAfterMs?: number }).retryAfterMs).toBe(300000);
        }
        if (r.result.kind === "permanent") expect(r.result.fallbackEligible).toBe([2002, 2003, 4007].includes(code));
      }
    });
  }

  test("2001 Operation restricted fails permanently but raises the alarm", () => {
    const r = answer(200, submitRspXml(ns, "6.8.0", "t", 2001, "x", undefined));
    expect(r.result.kind).toBe("permanent");
    expect(r.alarm).toContain("2001");
  });

  test("config errors become permanent when config_error_retry_after_ms is 0", () => {
    const strict = settings({ config_error_retry_after_ms: 0 });
    const r = classifySubmitAnswer(strict, { status: 200, contentType: "text/xml", retryAfter: null, body: enc(submitRspXml(ns, "6.8.0", "t", 4001, "x", undefined)) }, now);
    expect(r.result).toMatchObject({ kind: "permanent", code: "mm7:4001", fallbackEligible: false });
    const h = classifySubmitAnswer(strict, { status: 401, contentType: null, retryAfter: null, body: enc("") }, now);
    expect(h.result).toMatchObject({ kind: "permanent", code: "mm7:http-401" });
    expect(h.alarm).toBeDefined();
  });

  test("fallback codes are configurable", () => {
    const custom = settings({ fallback_status_codes: [2004] });
    const r = classifySubmitAnswer(custom, { status: 200, contentType: "text/xml", retryAfter: null, body: enc(submitRspXml(ns, "6.8.0", "t", 2004, "x", undefined)) }, now);
    expect(r.result).toMatchObject({ kind: "permanent", fallbackEligible: true });
  });

  test.each([
    [1234, "ok"], [2555, "permanent"], [2560, "permanent"], [3500, "temporary"], [3510, "temporary"], [4999, "temporary"], [5000, "permanent"], [9999, "permanent"],
  ])("unlisted code %d is classed by its range: %s", (code, kind) => {
    const r = answer(200, submitRspXml(ns, "6.8.0", "t", code, "x", "M"));
    expect(r.result.kind).toBe(kind as "ok");
    if (kind !== "ok") expect((r.result as { code: string }).code).toBe(`mm7:${code}`);
    if (kind !== "ok") expect((r.result as { message: string }).message).toBe(`${code} ${kind === "temporary" ? "Unlisted server/service error" : "Unlisted error"}: x`);
    if (kind === "permanent") expect(r.result).toMatchObject({ fallbackEligible: false });
  });

  test("1000 without a MessageID is ok with no ids (logged by the carrier)", () => {
    expect(answer(200, submitRspXml(ns, "6.8.0", "t", 1000, "x", undefined)).result).toStrictEqual({ kind: "ok", carrierMessageIds: [] });
    // The id is read without the whitespace around it.
    const spaced = submitRspXml(ns, "6.8.0", "t", 1000, "x", "MID-9").replace(">MID-9<", ">\n  MID-9 \n<");
    expect(spaced).toContain("\n  MID-9");
    expect(answer(200, spaced).result).toStrictEqual({ kind: "ok", carrierMessageIds: ["MID-9"] });
  });
});

describe("HTTP without an MM7 status", () => {
  test.each([
    [401, "temporary", "mm7:http-401", true, false],
    [403, "temporary", "mm7:http-403", true, false],
    [404, "temporary", "mm7:http-404", true, false],
    [302, "temporary", "mm7:http-302", true, false],
    [400, "permanent", "mm7:http-400", false, false],
    [413, "permanent", "mm7:http-413", false, false],
    [408, "temporary", "mm7:http-408", false, false],
    [429, "temporary", "mm7:http-429", false, false],
    [500, "temporary", "mm7:http-500", false, false],
    [502, "temporary", "mm7:http-502", false, false],
    [503, "temporary", "mm7:http-503", false, false],
    [200, "temporary", "mm7:bad-response", false, true],
    [300, "temporary", "mm7:http-300", true, false],
    [405, "temporary", "mm7:http-405", true, false],
    [407, "temporary", "mm7:http-407", true, false],
  ])("HTTP %d with a garbage body → %s %s", (status, kind, code, alarm, inDoubt) => {
    const r = answer(status, "<html>oops</html>", "text/html");
    expect(r.result).toMatchObject({ kind, code, message: `HTTP ${status}: no status code in the answer` });
    expect(r.alarm !== undefined).toBe(alarm);
    // Only a 2xx nobody can read may be a submit the MMSC took (issue 11 item 9).
    expect(r.result.kind === "temporary" && r.result.inDoubt === true).toBe(inDoubt);
    if (r.result.kind === "permanent") expect(r.result.fallbackEligible).toBe(false);
  });

  test("what the answer said, when it said no status: empty, an envelope without a Body, a SubmitRsp without Status", () => {
    expect(answer(200, "", null).result).toMatchObject({ kind: "temporary", code: "mm7:bad-response", message: "HTTP 200: unreadable answer" });
    expect(answer(200, "\u0000\u0001 not xml <<", "text/xml").result).toMatchObject({ kind: "temporary", code: "mm7:bad-response", message: "HTTP 200: unreadable answer" });
    const noBody = `<?xml version="1.0"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header/></env:Envelope>`;
    expect(answer(200, noBody).result).toMatchObject({ kind: "temporary", code: "mm7:bad-response", message: "HTTP 200: no status code in the answer" });
    const noStatus = submitRspXml(ns, "6.8.0", "t", 1000, "x", "M").replace(/<([\w:]*)Status>[\s\S]*<\/\1Status>/, "");
    expect(noStatus).not.toContain("StatusCode");
    expect(answer(200, noStatus).result).toMatchObject({ kind: "temporary", code: "mm7:bad-response", message: "HTTP 200: no status code in the answer" });
  });

  test("a Client fault without a code on a credentials error stays a configuration alarm", () => {
    const r = answer(401, faultXml(ns, "6.8.0", "t", 0, "nope", "none"));
    expect(r.result).toMatchObject({ kind: "temporary", code: "mm7:http-401" });
    expect(r.alarm).toContain("401");
  });

  test("a fault without any code: Client is permanent, Server temporary", () => {
    expect(answer(500, faultXml(ns, "6.8.0", "t", 0, "nope", "none")).result).toMatchObject({ kind: "permanent", code: "mm7:http-500" });
    const server = faultXml(ns, "6.8.0", "t", 0, "busy", "none").replace("soap-env:Client", "soap-env:Server");
    expect(answer(500, server).result).toMatchObject({ kind: "temporary", code: "mm7:http-500" });
    expect(answer(200, faultXml(ns, "6.8.0", "t", 0, "nope", "none")).result).toMatchObject({ kind: "permanent", code: "mm7:fault" });
    // A 2xx carrying a Server fault: the MMSC could not do it now, so it is retried.
    expect(answer(200, server).result).toMatchObject({ kind: "temporary", code: "mm7:fault" });
  });

  test("Retry-After is honoured, seconds or date, capped at a day", () => {
    expect(answer(503, "", null, "7").result).toMatchObject({ kind: "temporary", retryAfterMs: 7000 });
    expect(parseRetryAfter(new Date(now + 60_000).toUTCString(), now)).toBe(60_000);
    expect(parseRetryAfter("999999", now)).toBe(86_400_000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(" 7 ", now)).toBe(7000);
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter(new Date(now - 60_000).toUTCString(), now)).toBeUndefined(); // in the past
    // A date that ends (or starts) with digits is still a date, not seconds.
    const iso = "2023-11-14T22:23:20Z";
    expect(parseRetryAfter(iso, now)).toBe(Date.parse(iso) - now);
  });

  test("a multipart answer and application/xml are read", () => {
    const body = `--b\r\nContent-Type: text/xml\r\n\r\n${submitRspXml(ns, "6.8.0", "t", 1000, "ok", "MX")}\r\n--b--\r\n`;
    expect(answer(200, body, 'multipart/related; boundary="b"').result).toEqual({ kind: "ok", carrierMessageIds: ["MX"] });
    expect(answer(200, submitRspXml(ns, "6.8.0", "t", 1000, "ok", "MY"), "application/xml").result).toEqual({ kind: "ok", carrierMessageIds: ["MY"] });
  });
});

describe("MMStatus table", () => {
  test.each([
    ["Retrieved", "delivered", false],
    ["Forwarded", "delivered", false],
    ["Deferred", "pending", false],
    ["Indeterminate", "unknown", false],
    ["Expired", "failed", false],
    ["Rejected", "failed", false],
    ["Unrecognised", "failed", true],
    ["Unrecognized", "failed", true],
    ["UNRECOGNISED", "failed", true],
    ["DeliveryConditionNotMet", "failed", false],
    ["NotSupported", "failed", true],
    ["Unreachable", "failed", false],
    ["retrieved", "delivered", false],
    ["SomethingNew", "unknown", false],
    [" Retrieved\n", "delivered", false],
    [" NotSupported ", "failed", true],
  ])("%s → %s (fallback %p)", (mmStatus, outcome, fallback) => {
    expect(mmStatusOutcome(mmStatus)).toBe(outcome as "failed");
    expect(isFallbackMmStatus(mmStatus, s.fallback_mmstatus)).toBe(fallback);
  });
});
