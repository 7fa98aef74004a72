// `mms-gateway probe --config FILE`: the first thing an operator runs on site. Each carrier is
// connected and authenticated without sending a message, and each URL the gateway will post to is
// checked against the egress rules; one line each, exit 1 when any line failed.
import { probeMmsc } from "../../adapters/mm7/index.ts";
import { probeSmsc, type ProbeResult } from "../../adapters/smpp/index.ts";
import { carrierEntries, ConfigError, loadConfigFile, mm7Settings, smppSettings, type Config, type MmsSection, type SmsSection } from "../config.ts";
import { createEgress } from "../egress/fetch.ts";
import { classifyAddress } from "../egress/address.ts";

interface Line extends ProbeResult {
  subject: string;
}

const mark: Record<ProbeResult["verdict"], string> = { ok: "ok        ", unverified: "unverified", failed: "FAILED    " };

async function carrierLines(config: Config): Promise<Line[]> {
  const sandbox: ProbeResult = { verdict: "ok", detail: "sandbox: the embedded test carrier, nothing leaves this machine" };
  // Every carrier of the file at once: an unreachable one waits out its connect timeout.
  return Promise.all(
    carrierEntries(config).map(async ({ key, section }): Promise<Line> => {
      if (section.kind === "mm7") {
        const url = new URL((section as MmsSection).url);
        return { subject: `carrier ${section.name} (mm7 ${url.origin}${url.pathname})`, ...(await probeMmsc(mm7Settings(config, key))) };
      }
      if (section.kind === "smpp") {
        const { host, port, tls } = section as SmsSection;
        return { subject: `carrier ${section.name} (smpp ${host}:${port}${tls ? " tls" : ""})`, ...(await probeSmsc(smppSettings(config, key))) };
      }
      return { subject: `carrier ${section.name} (sandbox)`, ...sandbox };
    }),
  );
}

/** Where the gateway posts: MO to each account's inbound_url, events to callback URLs that come with each request. */
async function urlLines(config: Config): Promise<Line[]> {
  const egress = createEgress({ allow: config.egress.allow });
  const lines: Line[] = [];
  for (const a of config.accounts) {
    const subject = `account ${a.id} inbound_url`;
    if (!a.inbound_url) {
      lines.push({ subject, verdict: "ok", detail: "not set: mobile-originated messages are only logged" });
      continue;
    }
    try {
      await egress.checkUrl(a.inbound_url);
      lines.push({ subject, verdict: "ok", detail: `${a.inbound_url} is allowed by the egress rules` });
    } catch (e) {
      lines.push({ subject, verdict: "failed", detail: `${a.inbound_url}: ${(e as Error).message}` });
    }
  }
  const allowed = config.egress.allow.length ? `public addresses and egress.allow ${JSON.stringify(config.egress.allow)}` : "public addresses only";
  lines.push({ subject: "callback URLs", verdict: "ok", detail: `webhooks may reach ${allowed}` });
  return lines;
}

/** The MMSC posts receipts and MO to us: it can only if we listen beyond loopback, and should authenticate. */
function inboundLines(config: Config): Line[] {
  if (!carrierEntries(config).some((e) => e.section.kind === "mm7")) return [];
  const { listen: inboundListen, mm7 } = config.inbound;
  const [key, listen] = inboundListen ? ["inbound.listen", inboundListen] : ["server.listen", config.server.listen];
  const host = listen.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  const loopback = host === "localhost" || classifyAddress(host) === "loopback";
  const problems = [
    loopback ? `${key} ${listen} is loopback: the MMSC reaches ${mm7.path} only through a local proxy` : "",
    mm7.username ? "" : "no Basic auth (allow_unauthenticated): anyone who reaches it can post delivery reports",
  ].filter(Boolean);
  const subject = `inbound ${mm7.path}`;
  if (problems.length === 0) return [{ subject, verdict: "ok", detail: `on ${listen}, Basic auth as "${mm7.username}"` }];
  return [{ subject, verdict: "unverified", detail: problems.join("; ") }];
}

export async function runProbe(args: string[]): Promise<number> {
  const i = args.indexOf("--config");
  const file = i >= 0 ? args[i + 1] : undefined;
  if (!file) throw new ConfigError(["probe needs --config FILE"]);
  const config = await loadConfigFile(file);
  const lines = [...(await carrierLines(config)), ...inboundLines(config), ...(await urlLines(config))];
  for (const l of lines) console.log(`${mark[l.verdict]}  ${l.subject}: ${l.detail}`);
  return lines.some((l) => l.verdict === "failed") ? 1 : 0;
}
