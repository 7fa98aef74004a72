import { describe, expect, test } from "bun:test";
import { buildConfig } from "../../src/config.ts";
import { InvalidField, aliases, parseSendRequest, requestIdOf } from "../../src/pipeline/send-request.ts";

const limits = buildConfig({}).limits;
const base = {
  to: "0012025550123",
  from: "18885551234",
  text: "hi",
  callback_url: "https://br.example/cb",
};

function fieldOf(body: unknown, channel: "mms" | "sms" = "mms"): string {
  try {
    parseSendRequest(body, channel, limits);
  } catch (e) {
    if (e instanceof InvalidField) return e.field;
    throw e;
  }
  return "(valid)";
}

describe("aliases", () => {
  for (const [canonical, names] of Object.entries(aliases)) {
    for (const name of names) {
      test(`${name} is read as ${canonical}`, () => {
        const values: Record<string, unknown> = {
          subject: "S",
          fallback_text: "F",
          media: { url: "https://cdn.example/a.jpg" },
          from: "ACME",
          to: "+4915112345678",
          text: "T",
          request_id: "rid-1",
          custom_data: "c=1",
          callback_url: "https://br.example/hook",
          metadata: { a: 1 },
        };
        const body: Record<string, unknown> = { ...base };
        for (const n of names) delete body[n];
        body[name] = values[canonical];
        const r = parseSendRequest(body, "mms", limits);
        const got = canonical === "request_id" ? r.requestId : (r.payload as unknown as Record<string, unknown>)[canonical];
        const want = canonical === "to" ? "4915112345678" : canonical === "media" ? [values.media] : values[canonical];
        expect(got).toEqual(want);
      });
    }
  }

  test("two spellings of one field with different values → 400 naming the field", () => {
    expect(fieldOf({ ...base, text: "a", message: "b" })).toBe("text");
    expect(fieldOf({ ...base, callback_url: "https://a.example/", webhook_url: "https://b.example/" })).toBe("callback_url");
  });

  test("two spellings with the same value are fine", () => {
    expect(fieldOf({ ...base, text: "a", message: "a" })).toBe("(valid)");
  });

  test("media item aliases: link/src for url, type/mime_type for content_type", () => {
    const r = parseSendRequest({ ...base, media: [{ link: "https://x.example/1.png", mime_type: "Image/PNG" }, { src: "http://x.example/2.gif", type: "image/gif" }] }, "mms", limits);
    expect(r.payload.media).toEqual([
      { url: "https://x.example/1.png", content_type: "image/png" },
      { url: "http://x.example/2.gif", content_type: "image/gif" },
    ]);
  });

  test("unknown fields are ignored and reported", () => {
    expect(parseSendRequest({ ...base, colour: "red" }, "mms", limits).unknownFields).toEqual(["colour"]);
  });
});

describe("validation names the field", () => {
  const cases: [string, Record<string, unknown>, string, ("mms" | "sms")?][] = [
    ["missing to", { ...base, to: undefined }, "to"],
    ["to without 00/+", { ...base, to: "12025550123" }, "to"],
    ["to too short", { ...base, to: "00123456" }, "to"],
    ["to too long", { ...base, to: `00${"1".repeat(16)}` }, "to"],
    ["to with letters", { ...base, to: "00123abc4567" }, "to"],
    ["to not a string", { ...base, to: 12025550123 }, "to"],
    ["missing from", { ...base, from: undefined }, "from"],
    ["alphanumeric sender of 12 chars", { ...base, from: "ABCDEFGHIJKL" }, "from"],
    ["sender with symbols", { ...base, from: "A<script>" }, "from"],
    ["subject over 80", { ...base, subject: "x".repeat(81) }, "subject"],
    ["text not a string", { ...base, text: 5 }, "text"],
    ["mms with neither text nor media", { ...base, text: "" }, "media"],
    ["media not an object", { ...base, media: "https://x.example/a.jpg" }, "media"],
    ["media url not http", { ...base, media: { url: "ftp://x.example/a.jpg" } }, "media.url"],
    ["media url relative", { ...base, media: [{ url: "/a.jpg" }] }, "media[0].url"],
    ["media content_type bogus", { ...base, media: { url: "https://x.example/a", content_type: "jpeg" } }, "media.content_type"],
    ["too many media", { ...base, media: Array.from({ length: 6 }, () => ({ url: "https://x.example/a.jpg" })) }, "media"],
    ["request_id empty", { ...base, request_id: "" }, "request_id"],
    ["request_id too long", { ...base, request_id: "r".repeat(257) }, "request_id"],
    ["request_id not a string", { ...base, request_id: 7 }, "request_id"],
    ["custom_data over 16 KiB", { ...base, custom_data: "c".repeat(16385) }, "custom_data"],
    ["custom_data not a string", { ...base, custom_data: { a: 1 } }, "custom_data"],
    ["callback_url missing", { ...base, callback_url: undefined }, "callback_url"],
    ["callback_url not http", { ...base, callback_url: "javascript:alert(1)" }, "callback_url"],
    ["callback_url garbage", { ...base, callback_url: "http://" }, "callback_url"],
    ["metadata not an object", { ...base, metadata: "x" }, "metadata"],
    ["metadata over 16 KiB", { ...base, metadata: { a: "m".repeat(16384) } }, "metadata"],
    ["body an array", [base] as unknown as Record<string, unknown>, "body"],
    ["sms with media", { ...base, media: { url: "https://x.example/a.jpg" } }, "media", "sms"],
    ["sms with subject", { ...base, subject: "s" }, "subject", "sms"],
    ["sms without text", { ...base, text: "" }, "text", "sms"],
  ];
  for (const [name, body, field, channel] of cases) {
    test(name, () => expect(fieldOf(JSON.parse(JSON.stringify(body)), channel)).toBe(field));
  }

  test("limits at the edge are accepted (one under the one-over cases above)", () => {
    expect(fieldOf({ ...base, subject: "x".repeat(80), custom_data: "c".repeat(16384), request_id: "r".repeat(256), from: "ABCDEFGHIJK" })).toBe("(valid)");
    expect(fieldOf({ ...base, to: `00${"1".repeat(15)}` })).toBe("(valid)");
  });
});

describe("normalisation", () => {
  test("to is stored as E.164 digits, from loses + or 00, custom_data is byte for byte", () => {
    const weird = "a%2Fb=c&d=%F0%9F%98%80 ünï \u0000 \"q\"";
    const r = parseSendRequest({ ...base, to: "+12025550123", from: "0044123456789", custom_data: weird }, "mms", limits);
    expect(r.payload.to).toBe("12025550123");
    expect(r.payload.from).toBe("44123456789");
    expect(r.payload.custom_data).toBe(weird);
  });

  test("no request_id → null (no dedup); requestIdOf finds it in any spelling", () => {
    expect(parseSendRequest(base, "mms", limits).requestId).toBeNull();
    expect(requestIdOf({ requestId: "a" })).toBe("a");
    expect(requestIdOf({ id: "b" })).toBe("b");
    expect(requestIdOf([1])).toBeNull();
  });
});
