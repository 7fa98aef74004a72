// Runs the compiled gateway (dist/mms-gateway, built by `make build`) as a real process.
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const binaryPath = resolve(import.meta.dir, "../../dist/mms-gateway");

export function requireBinary(): void {
  if (!existsSync(binaryPath)) throw new Error(`${binaryPath} is missing: run \`make build\` (make test does)`);
}

/** Writes a TOML config for the binary from a plain object (only the shapes tests need). */
function writeToml(path: string, doc: Record<string, unknown>): void {
  const lines: string[] = [];
  const value = (v: unknown): string => {
    if (typeof v === "string") return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map(value).join(", ")}]`;
    if (v && typeof v === "object") return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${value(x)}`).join(", ")} }`;
    return String(v);
  };
  const table = (prefix: string, obj: Record<string, unknown>) => {
    const scalars = Object.entries(obj).filter(([, v]) => !(v && typeof v === "object" && !Array.isArray(v)) || prefix.endsWith("accounts"));
    const tables = Object.entries(obj).filter(([, v]) => v && typeof v === "object" && !Array.isArray(v));
    if (scalars.length && prefix) lines.push(`[${prefix}]`);
    for (const [k, v] of Object.entries(obj)) if (!(v && typeof v === "object" && !Array.isArray(v))) lines.push(`${k} = ${value(v)}`);
    for (const [k, v] of tables) table(prefix ? `${prefix}.${k}` : k, v as Record<string, unknown>);
  };
  const { accounts, ...rest } = doc;
  table("", rest);
  for (const a of (accounts as Record<string, unknown>[]) ?? []) {
    lines.push("[[accounts]]");
    for (const [k, v] of Object.entries(a)) lines.push(`${k} = ${value(v)}`);
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
}

export interface Running {
  proc: Subprocess;
  url: string;
  output: () => string;
}

/** Starts `mms-gateway serve --config FILE --listen 127.0.0.1:PORT` and waits until /healthz answers. */
export async function startBinary(configPath: string, port: number, env: Record<string, string> = {}): Promise<Running> {
  requireBinary();
  const chunks: string[] = [];
  const proc = Bun.spawn([binaryPath, "serve", "--config", configPath, "--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) chunks.push(new TextDecoder().decode(c));
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}: ${chunks.join("")}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`gateway did not start: ${chunks.join("")}`);
    await Bun.sleep(25);
  }
  return { proc, url, output: () => chunks.join("") };
}

/** Starts one gateway per node name, all at once, each on a free port. */
export function startNodes(names: string[], configOf: (name: string) => string): Promise<Running[]> {
  return Promise.all(names.map((n) => startBinary(configOf(n), freePort())));
}

/** SIGKILLs the gateways (skipping ones that never started) and waits until each has exited. */
export async function killNodes(nodes: (Running | undefined)[]): Promise<void> {
  for (const n of nodes) n?.proc.kill("SIGKILL");
  await Promise.all(nodes.map((n) => n?.proc.exited));
}

/** A free loopback port (bound then released). */
export function freePort(): number {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}

/**
 * A port that refuses connections, for "carrier unreachable" tests. It stays bound until release(), so the gateway
 * started meanwhile cannot draw it as its own port (freePort() alone let that happen once in CI).
 */
export function heldPort(): { port: number; release: () => void } {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  return { port: s.port!, release: () => void s.stop(true) };
}

export function configFor(dir: string, overrides: Record<string, unknown> = {}): string {
  const path = join(dir, "gateway.toml");
  writeToml(path, overrides);
  return path;
}
