// The one way the gateway talks to URLs it was handed (media, webhook callbacks): every address it
// connects to is checked first, so a request cannot make it reach the operator's own network (SSRF).

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { readBody } from "../../adapters/shared/body.ts";

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

/** The request must not be made, and making it again will not help. */
export class EgressRefused extends Error {
  override readonly name = "EgressRefused";
  constructor(readonly reason: string) {
    super(`egress refused: ${reason}`);
  }
}

/** The response body is over the byte cap (permanent). */
export class EgressTooLarge extends Error {
  override readonly name = "EgressTooLarge";
  readonly code = "too_large";
  constructor(readonly maxBytes: number) {
    super(`response body is over ${maxBytes} bytes`);
  }
}

/** DNS, connect, TLS, reset or timeout: worth trying again later. */
export class EgressNetworkError extends Error {
  override readonly name = "EgressNetworkError";
  constructor(
    message: string,
    readonly timedOut: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** How a final HTTP status should be treated by whoever made the request. */
export function classifyStatus(status: number): "ok" | "temporary" | "permanent" {
  if (status >= 200 && status < 300) return "ok";
  if (status === 408 || status === 429 || status >= 500) return "temporary";
  return "permanent";
}

export interface EgressRequest extends RequestInit {
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  /** Bun's TLS options (e.g. a private CA); the server name is always set by the egress. */
  tls?: BunFetchRequestInit["tls"];
}

export interface EgressResponse {
  status: number;
  headers: Headers;
  /** The whole body; for a non-2xx status cut at maxBytes instead of failing, since it is only for logs. */
  body: Uint8Array;
  finalUrl: string;
}

export interface Egress {
  /** Throws EgressRefused, EgressTooLarge or EgressNetworkError; any final HTTP status is returned. */
  fetch(url: string, init: EgressRequest): Promise<EgressResponse>;
  /** Resolves the host and refuses it unless every address is public or allowed. */
  checkUrl(url: string): Promise<void>;
  /** No DNS: refuses a malformed or non-http(s) URL, and an IP-literal host that is not allowed. */
  checkLiteral(url: string): void;
}

export interface EgressOptions {
  allow: readonly string[];
  resolve?: (host: string) => Promise<string[]>;
}

async function resolveAll(host: string): Promise<string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((a) => a.address);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function createEgress(options: EgressOptions): Egress {
  const allow = parseCidrList(options.allow);
  const resolve = options.resolve ?? resolveAll;

  function parseTarget(url: string): URL {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new EgressRefused("not a valid URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new EgressRefused(`scheme ${parsed.protocol} is not http or https`);
    }
    return parsed;
  }

  /** The IP if the URL names one; the WHATWG parser has already turned 0x7f.1 or 2130706433 into 127.0.0.1. */
  function literalIp(url: URL): string | null {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return isIP(host) ? host : null;
  }

  function checkAddress(host: string, ip: string): void {
    const kind = classifyAddress(ip);
    if (kind !== "public" && !isAllowed(ip, allow)) {
      throw new EgressRefused(host === ip ? `${ip} is a ${kind} address` : `${host} resolves to ${kind} address ${ip}`);
    }
  }

  /** The checked address to connect to. Every answer is checked, since the client could pick any of them. */
  async function addressFor(url: URL, signal?: AbortSignal): Promise<string> {
    const literal = literalIp(url);
    if (literal) {
      checkAddress(literal, literal);
      return literal;
    }
    let addresses: string[];
    try {
      addresses = await abortable(resolve(url.hostname), signal);
    } catch (error) {
      throw networkError(error, signal, `cannot resolve ${url.hostname}`);
    }
    if (addresses.length === 0) throw new EgressNetworkError(`${url.hostname} has no address`, false);
    for (const ip of addresses) checkAddress(url.hostname, ip);
    // Only one address is tried, so prefer IPv4: a host without an IPv6 route is commoner than a v6-only server.
    return addresses.find((ip) => !ip.includes(":")) ?? addresses[0]!;
  }

  async function fetchChecked(url: string, init: EgressRequest): Promise<EgressResponse> {
    const { timeoutMs, maxBytes, maxRedirects, tls, signal: callerSignal, ...rest } = init;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
    const headers = new Headers(rest.headers);
    let method = (rest.method ?? "GET").toUpperCase();
    let body = rest.body;
    let current = parseTarget(url);

    for (let hop = 0; ; hop++) {
      const ip = await addressFor(current, signal);
      // Connect to the address just checked, never to the name again: a DNS answer that changes between
      // the check and the connect (rebinding) cannot move the request. The name still goes in Host and,
      // for https, in SNI and the certificate check.
      const target = new URL(current);
      target.hostname = ip.includes(":") ? `[${ip}]` : ip;
      // The setter silently ignores what it cannot parse (a zoned fe80::1%eth0), which would leave the name.
      if (literalIp(target) === null) throw new EgressRefused(`cannot connect to ${ip} by address`);
      headers.set("host", current.host);
      const byName = literalIp(current) === null;
      let response: Response;
      try {
        response = await fetch(target, {
          ...rest,
          method,
          body,
          headers,
          signal,
          redirect: "manual",
          proxy: false, // a proxy would connect by name and make the check above meaningless
          ...(current.protocol === "https:" ? { tls: { ...tls, ...(byName ? { serverName: current.hostname } : {}) } } : {}),
        });
      } catch (error) {
        throw networkError(error, signal, `request to ${current.host} failed`);
      }

      const location = REDIRECTS.has(response.status) ? response.headers.get("location") : null;
      if (location === null) {
        const ok = classifyStatus(response.status) === "ok";
        return {
          status: response.status,
          headers: response.headers,
          body: await readCapped(response, maxBytes, ok, signal),
          finalUrl: current.href,
        };
      }
      await response.body?.cancel();
      if (hop >= maxRedirects) throw new EgressRefused("too many redirects");
      let next: URL;
      try {
        next = parseTarget(new URL(location, current).href);
      } catch (error) {
        throw error instanceof EgressRefused ? error : new EgressRefused("bad redirect location");
      }
      if (next.origin !== current.origin) {
        // As browsers do: credentials meant for one origin are not handed to the next.
        headers.delete("authorization");
        headers.delete("cookie");
      }
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")) {
        method = "GET";
        body = null;
        headers.delete("content-type");
        headers.delete("content-length");
      }
      current = next;
    }
  }

  return {
    fetch: fetchChecked,
    async checkUrl(url) {
      await addressFor(parseTarget(url));
    },
    checkLiteral(url) {
      const ip = literalIp(parseTarget(url));
      if (ip) checkAddress(ip, ip);
    },
  };
}

/** Reads at most maxBytes; past that it stops and drops the connection instead of downloading the rest. */
async function readCapped(
  response: Response,
  maxBytes: number,
  failWhenOver: boolean,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const encoding = response.headers.get("content-encoding");
  const declared = Number(response.headers.get("content-length") ?? NaN);
  // Content-Length counts the encoded bytes, so it says nothing certain about a compressed body's size.
  if (failWhenOver && (!encoding || encoding === "identity") && declared > maxBytes) {
    await response.body?.cancel();
    throw new EgressTooLarge(maxBytes);
  }
  let body: Uint8Array | undefined;
  try {
    body = await readBody(response.body, maxBytes, failWhenOver ? "refuse" : "cut");
  } catch (error) {
    throw networkError(error, signal, "reading the response failed");
  }
  if (body === undefined) throw new EgressTooLarge(maxBytes);
  return body;
}

function networkError(error: unknown, signal: AbortSignal | undefined, context: string): EgressNetworkError {
  const timedOut = signal?.aborted === true && (signal.reason as Error | undefined)?.name === "TimeoutError";
  const detail = timedOut ? "timed out" : error instanceof Error ? error.message : String(error);
  return new EgressNetworkError(`${context}: ${detail}`, timedOut, { cause: error });
}

/** DNS lookups take no signal; this lets the request's deadline cut one short anyway. */
function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
