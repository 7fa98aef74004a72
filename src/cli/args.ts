// The one option syntax every command shares: `--name value`.
import { ConfigError } from "../config.ts";

export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new ConfigError([`${name} needs a value`]);
  return v;
}
