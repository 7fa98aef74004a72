// Pure address rules for egress: parsing IPs and CIDRs, and what class of network an address belongs to.
// No I/O, so both the guarded client (fetch.ts) and the probe use the same verdicts.

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "metadata"
  | "unspecified"
  | "multicast"
  | "reserved";

type Ip = { version: 4; value: bigint } | { version: 6; value: bigint };

/** Dotted quad only: DNS answers and WHATWG-normalised URL hosts always come in this form. */
function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    // A leading zero could mean octal to some other parser; refuse rather than guess.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIpv6(text: string): bigint | null {
  let rest = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = rest.indexOf("%");
  if (zone >= 0) rest = rest.slice(0, zone);
  const halves = rest.split("::");
  if (halves.length > 2) return null;
  // An embedded dotted quad may only end the whole address.
  const groups = (half: string | undefined, last: boolean): number[] | null => {
    if (!half) return [];
    const out: number[] = [];
    const pieces = half.split(":");
    for (const [i, piece] of pieces.entries()) {
      if (last && i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-f]{1,4}$/i.test(piece)) {
        out.push(parseInt(piece, 16));
      } else return null;
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = groups(halves[1], true);
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  let value = 0n;
  for (const g of [...head, ...Array<number>(missing).fill(0), ...tail]) value = (value << 16n) | BigInt(g);
  return value;
}

function parseIp(text: string): Ip | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { version: 4, value: v4 };
  const v6 = parseIpv6(text);
  return v6 === null ? null : { version: 6, value: v6 };
}

/**
 * The unit a client is counted by (the guessing guard): an IPv4 address, or an IPv6 /64, since one
 * host is commonly given a whole /64 and could otherwise take a fresh address for every try.
 */
export function clientGroup(addr: string): string {
  const ip = parseIp(addr);
  if (!ip || ip.version === 4) return addr;
  if (ip.value >> 32n === 0xffffn) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join("."); // IPv4-mapped
  const prefix = ip.value >> 64n;
  return `${[48n, 32n, 16n, 0n].map((s) => ((prefix >> s) & 0xffffn).toString(16)).join(":")}::/64`;
}

export interface Cidr {
  version: 4 | 6;
  base: bigint;
  prefix: number;
}

function parseCidr(entry: string): Cidr | null {
  const [addr = "", prefixText, extra] = entry.trim().split("/");
  const ip = parseIp(addr);
  if (!ip || extra !== undefined) return null;
  const bits = ip.version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (prefix < 0 || prefix > bits) return null;
  return { version: ip.version, base: ip.value & mask(bits, prefix), prefix };
}

function mask(bits: number, prefix: number): bigint {
  const width = BigInt(bits);
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
}

function contains(cidr: Cidr, ip: Ip): boolean {
  const bits = cidr.version === 4 ? 32 : 128;
  return cidr.version === ip.version && (ip.value & mask(bits, cidr.prefix)) === cidr.base;
}

/** Parses `[egress] allow`; a bare address means just that address. Throws naming the bad entry. */
export function parseCidrList(list: readonly string[]): Cidr[] {
  return list.map((entry) => {
    const cidr = parseCidr(entry);
    if (!cidr) throw new Error(`not a CIDR: ${JSON.stringify(entry)}`);
    return cidr;
  });
}

const V4_MAPPED = parseCidr("::ffff:0:0/96")!;

export function isAllowed(ip: string, allow: readonly Cidr[]): boolean {
  const parsed = parseIp(ip);
  if (!parsed) return false;
  // ::ffff:127.0.0.1 reaches 127.0.0.1 on a dual-stack socket, so "127.0.0.0/8" must cover it too.
  const alsoV4: Ip | null = contains(V4_MAPPED, parsed) ? { version: 4, value: parsed.value & 0xffffffffn } : null;
  return allow.some((cidr) => contains(cidr, parsed) || (alsoV4 !== null && contains(cidr, alsoV4)));
}

// First match wins, so the narrow entries come before the ranges that hold them.
const V4_RULES = rules([
  ["169.254.169.254/32", "metadata"], // AWS, GCP, Azure, OpenStack instance metadata
  ["100.100.100.200/32", "metadata"], // Alibaba Cloud instance metadata
  ["0.0.0.0/8", "unspecified"], // Linux connects 0.0.0.0 to the local host
  ["127.0.0.0/8", "loopback"],
  ["10.0.0.0/8", "private"],
  ["172.16.0.0/12", "private"],
  ["192.168.0.0/16", "private"],
  ["100.64.0.0/10", "private"], // carrier-grade NAT: someone's internal network
  ["169.254.0.0/16", "link-local"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "reserved"],
  ["198.51.100.0/24", "reserved"],
  ["203.0.113.0/24", "reserved"],
  ["192.88.99.0/24", "reserved"],
  ["198.18.0.0/15", "reserved"], // benchmarking
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"], // includes the broadcast 255.255.255.255
]);

// "v4-low32" / "v4-6to4": the address carries an IPv4 address that is where packets end up.
const V6_RULES = rules([
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["::ffff:0:0/96", "v4-low32"], // IPv4-mapped
  ["::ffff:0:0:0/96", "v4-low32"], // IPv4-translated (SIIT)
  ["64:ff9b::/96", "v4-low32"], // NAT64 well-known prefix
  ["64:ff9b:1::/48", "private"], // NAT64 local-use
  ["2002::/16", "v4-6to4"],
  ["::/96", "reserved"], // deprecated IPv4-compatible
  ["100::/64", "reserved"], // discard
  ["2001::/32", "reserved"], // Teredo: its embedded client address is obfuscated, not worth decoding
  ["2001:2::/48", "reserved"], // benchmarking
  ["2001:10::/28", "reserved"],
  ["2001:20::/28", "reserved"],
  ["2001:db8::/32", "reserved"],
  ["3fff::/20", "reserved"],
  ["fd00:ec2::254/128", "metadata"], // AWS instance metadata over IPv6
  ["fc00::/7", "private"], // unique local
  ["fe80::/10", "link-local"],
  ["fec0::/10", "private"], // deprecated site-local
  ["ff00::/8", "multicast"],
  ["2000::/3", "public"], // the only range IANA hands out as global unicast
  ["::/0", "reserved"],
]);

type Rule = { cidr: Cidr; verdict: AddressClass | "v4-low32" | "v4-6to4" };

function rules(list: [string, Rule["verdict"]][]): Rule[] {
  return list.map(([cidr, verdict]) => ({ cidr: parseCidr(cidr)!, verdict }));
}

/**
 * What kind of address this is. Anything that is not a dotted quad or an IPv6 address is
 * "reserved", so a caller that refuses all but "public" fails closed.
 */
export function classifyAddress(ip: string): AddressClass {
  const parsed = parseIp(ip);
  if (!parsed) return "reserved";
  if (parsed.version === 4) return classifyV4(parsed.value);
  const rule = V6_RULES.find((r) => contains(r.cidr, parsed))!;
  if (rule.verdict === "v4-low32") return classifyV4(parsed.value & 0xffffffffn);
  if (rule.verdict === "v4-6to4") return classifyV4((parsed.value >> 80n) & 0xffffffffn);
  return rule.verdict;
}

function classifyV4(value: bigint): AddressClass {
  const ip: Ip = { version: 4, value };
  return (V4_RULES.find((r) => contains(r.cidr, ip))?.verdict as AddressClass) ?? "public";
}
