// Shared fixtures for the MM7 unit tests: settings, a deterministic random source, sample media.
import type { MmsSubmit } from "../../adapters/carrier.ts";
import type { Logger } from "../../adapters/carrier.ts";
import { resolveMm7Settings, type Mm7Settings } from "../../adapters/mm7/settings.ts";

const fixtureDir = new URL("../fixtures/mm7/", import.meta.url);

export async function fixtureBytes(name: string): Promise<Uint8Array> {
  return new Uint8Array(await Bun.file(new URL(name, fixtureDir)).arrayBuffer());
}

export function settings(over: Partial<Mm7Settings> = {}): Mm7Settings {
  return resolveMm7Settings({ url: "http://127.0.0.1:9/mm7", vaspid: "vasp1", vasid: "svc1", service_code: "7007", ...over });
}

import { seeded } from "./random.ts";

export { seeded };

export function randomBytes(n: number, seed = 1): Uint8Array {
  const r = seeded(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
  return out;
}

export function sampleSubmit(over: Partial<MmsSubmit> = {}): MmsSubmit {
  return {
    messageId: "msg_01",
    from: "12345",
    to: "12025550123",
    subject: "Hello & <welcome> \"friends\" — ünïcode ✓",
    text: "Sale today: 50% off & free <shipping>.\nSecond line — ümlaut.",
    media: [{ contentType: "image/jpeg", bytes: randomBytes(5000, 7), cacheKey: "sha-img-1", filename: "promo.jpg" }],
    ...over,
  };
}

const ignore = (_obj: object, _msg: string): void => {};
export const silentLog: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };

export interface LogLine {
  level: string;
  obj: object;
  msg: string;
}

export function memoryLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, lines };
}
