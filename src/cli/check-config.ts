// `mms-gateway check-config FILE`: loads the file as serve would and says ok or lists every problem.
import { ConfigError, loadConfigFile } from "../config.ts";

export async function checkConfig(args: string[]): Promise<number> {
  if (!args[0]) throw new ConfigError(["check-config needs a FILE"]);
  await loadConfigFile(args[0]);
  console.log(`${args[0]}: ok`);
  return 0;
}
