// The one way the gateway talks to URLs it was handed (media, webhook callbacks): every address it
// connects to is checked first, so a request cannot make it reach the operator's own network (SSRF).

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { readBody } from "../../adapters/shared/body.ts";
import { classifyAddress, isAllowed, parseCidrList } from "./address.ts";

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
  /** Takes a 2xx body chunk by chunk as it arrives (the cap still applies); the response's body is then empty. */
  onChunk?: (chunk: Uint8Array) => void;
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
    const { timeoutMs, maxBytes, maxRedirects, tls, onChunk, signal: callerSignal, ...rest } = init;
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
          body: await readCapped(response, maxBytes, ok, signal, ok ? onChunk : undefined),
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
  onChunk?: (chunk: Uint8Array) => void,
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
    body = await readBody(response.body, maxBytes, failWhenOver ? "refuse" : "cut", onChunk);
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
