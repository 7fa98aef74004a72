// Address rules on literals only: nothing here opens a socket or asks DNS.
import { describe, expect, test } from "bun:test";
import { EgressRefused, classifyStatus, createEgress } from "../../src/egress/fetch.ts";
import { classifyAddress, isAllowed, parseCidrList, type AddressClass } from "../../src/egress/address.ts";

const cases: [string, AddressClass][] = [
  // IPv4
  ["8.8.8.8", "public"],
  ["1.1.1.1", "public"],
  ["93.184.215.14", "public"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["172.32.0.1", "public"],
  ["172.15.255.255", "public"],
  ["192.168.1.1", "private"],
  ["100.64.0.1", "private"],
  ["100.127.255.255", "private"],
  ["100.128.0.1", "public"],
  ["169.254.169.254", "metadata"],
  ["100.100.100.200", "metadata"],
  ["169.254.0.1", "link-local"],
  ["198.18.0.1", "reserved"],
  ["198.19.255.255", "reserved"],
  ["198.20.0.1", "public"],
  ["192.0.2.1", "reserved"],
  ["203.0.113.9", "reserved"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["240.0.0.1", "reserved"],
  ["255.255.255.255", "reserved"],
  // IPv6
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["[::1]", "loopback"],
  ["2606:4700:4700::1111", "public"],
  ["2001:4860:4860::8888", "public"],
  ["fc00::1", "private"],
  ["fd12:3456:789a::1", "private"],
  ["fd00:ec2::254", "metadata"],
  ["fe80::1", "link-local"],
  ["fe80::1%eth0", "link-local"],
  ["febf::1", "link-local"],
  ["fec0::1", "private"],
  ["ff02::1", "multicast"],
  ["2001:db8::1", "reserved"],
  ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"], // Teredo
  ["100::1", "reserved"],
  ["::7f00:1", "reserved"], // deprecated IPv4-compatible
  ["4000::1", "reserved"], // outside 2000::/3
  // IPv4 inside IPv6
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::FFFF:10.1.2.3", "private"],
  ["::ffff:169.254.169.254", "metadata"],
  ["::ffff:a9fe:a9fe", "metadata"],
  ["::ffff:8.8.8.8", "public"],
  ["0:0:0:0:0:ffff:c0a8:101", "private"],
  ["::ffff:0:10.0.0.1", "private"], // IPv4-translated
  ["64:ff9b::10.0.0.1", "private"], // NAT64 with a private inside
  ["64:ff9b::a9fe:a9fe", "metadata"],
  ["64:ff9b::8.8.8.8", "public"],
  ["64:ff9b:1::1", "private"],
  ["2002:7f00:1::1", "loopback"], // 6to4 of 127.0.0.1
  ["2002:c0a8:101::1", "private"], // 6to4 of 192.168.1.1
  ["2002:0808:0808::1", "public"], // 6to4 of 8.8.8.8
  // not addresses: fail closed
  ["", "reserved"],
  ["localhost", "reserved"],
  ["127.1", "reserved"],
  ["0177.0.0.1", "reserved"],
  ["2130706433", "reserved"],
  ["256.0.0.1", "reserved"],
  ["1:2:3:4:5:6:7:8:9", "reserved"],
  ["1::2::3", "reserved"],
  ["12345::1", "reserved"],
  ["1.2.3.4::", "reserved"], // a dotted quad only at the end
  ["::1.2.3.4:1", "reserved"],
];

describe("classifyAddress", () => {
  test.each(cases)("%p is %p", (ip, expected) => {
    expect(classifyAddress(ip)).toBe(expected);
  });
});

describe("odd IPv4 spellings in URLs", () => {
  // The WHATWG parser (which fetch uses too) rewrites these before the guard sees the host.
  test.each([
    ["http://2130706433/", "127.0.0.1"],
    ["http://0x7f.1/", "127.0.0.1"],
    ["http://127.1/", "127.0.0.1"],
    ["http://0177.0.0.1/", "127.0.0.1"],
    ["http://0x7f000001/", "127.0.0.1"],
    ["http://127.0.0.1./", "127.0.0.1"],
    ["http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"],
    ["http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"],
    ["http://[0:0:0:0:0:ffff:a9fe:a9fe]/", "[::ffff:a9fe:a9fe]"],
  ])("%p has hostname %p and is refused", (url, hostname) => {
    expect(new URL(url).hostname).toBe(hostname);
    expect(classifyAddress(new URL(url).hostname)).not.toBe("public");
    expect(() => createEgress({ allow: [] }).checkLiteral(url)).toThrow(EgressRefused);
  });
});

describe("allow lists", () => {
  test("parses v4, v6 and bare addresses", () => {
    expect(parseCidrList(["127.0.0.0/8", "10.1.2.3", "fd00::/8", "::1"])).toEqual([
      { version: 4, base: 0x7f000000n, prefix: 8 },
      { version: 4, base: 0x0a010203n, prefix: 32 },
      { version: 6, base: 0xfdn << 120n, prefix: 8 },
      { version: 6, base: 1n, prefix: 128 },
    ]);
  });

  test("host bits beyond the prefix are ignored", () => {
    expect(parseCidrList(["127.0.0.1/8"])).toEqual(parseCidrList(["127.0.0.0/8"]));
  });

  test.each(["", "127.0.0.0/33", "::/129", "10.0.0.0/8/1", "example.com/8", "10.0.0.0/x", "127.1/8"])(
    "%p is not a CIDR",
    (entry) => {
      expect(() => parseCidrList([entry])).toThrow(/not a CIDR/);
    },
  );

  const allow = parseCidrList(["127.0.0.0/8", "10.20.0.0/16", "fd00:1::/32"]);
  test.each([
    ["127.0.0.1", true],
    ["127.200.1.1", true],
    ["::ffff:127.0.0.1", true], // mapped form reaches the same host
    ["10.20.255.1", true],
    ["10.21.0.1", false],
    ["fd00:1:ffff::1", true],
    ["fd00:2::1", false],
    ["::1", false],
    ["169.254.169.254", false],
    ["nonsense", false],
  ])("%p allowed: %p", (ip, expected) => {
    expect(isAllowed(ip, allow)).toBe(expected);
  });

  test("0.0.0.0/0 allows every IPv4 address, not IPv6", () => {
    const all = parseCidrList(["0.0.0.0/0"]);
    expect(isAllowed("169.254.169.254", all)).toBe(true);
    expect(isAllowed("fe80::1", all)).toBe(false);
  });

  test("createEgress rejects a bad allow entry at start", () => {
    expect(() => createEgress({ allow: ["10.0.0.0/40"] })).toThrow(/not a CIDR/);
  });
});

describe("checkLiteral", () => {
  const egress = createEgress({ allow: ["127.0.0.0/8"] });
  test.each([
    "http://example.com/a.jpg", // names are checked later, after DNS
    "https://8.8.8.8/x",
    "http://127.0.0.1:8080/x", // allowed
    "http://[2606:4700:4700::1111]/x",
  ])("passes %p", (url) => {
    expect(() => egress.checkLiteral(url)).not.toThrow();
  });
  test.each([
    "http://10.0.0.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x", // ::1 is not inside 127.0.0.0/8
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0/",
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "not a url",
  ])("refuses %p", (url) => {
    expect(() => egress.checkLiteral(url)).toThrow(EgressRefused);
  });
});

test("classifyStatus", () => {
  expect([200, 204, 301, 304, 400, 404, 408, 429, 500, 503].map(classifyStatus)).toEqual([
    "ok",
    "ok",
    "permanent",
    "permanent",
    "permanent",
    "permanent",
    "temporary",
    "temporary",
    "temporary",
    "temporary",
  ]);
});
