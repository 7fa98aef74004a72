// Media adaptation, the hosted media page and capability memory, built from the config in one place
// and handed to the dispatcher as hooks.
import type { MediaPart, MmsCarrier, MmsSubmit, SmsCarrier } from "../../adapters/carrier.ts";
import { capacityFor, countParts } from "../../adapters/smpp/index.ts";
import { carrierEntries, durations, type Config, type MmsSection, type SmsSection } from "../config.ts";
import type { GatewayError } from "../domain/outcome.ts";
import type { StoredMessage } from "../domain/message.ts";
import type { Metrics } from "../observe/metrics.ts";
import type { Store } from "../store/index.ts";
import { MediaAdapter, type AdaptedCache, type FitOutcome } from "./adapt.ts";
import { CapabilityMemory } from "./capability.ts";
import { createSharpCodec, type ImageCodec } from "./image-codec.ts";
import { MediaLinks, type SmsBudget } from "./media-link.ts";
import type { MediaFetcher } from "./media.ts";
import { createFfmpeg, type AvConverter } from "./transcode.ts";

export interface MediaServicesDeps {
  config: Config;
  store: Store;
  fetcher: MediaFetcher;
  metrics: Metrics;
  now: () => number;
  warn(detail: object, message: string): void;
  info(detail: object, message: string): void;
  codec?: ImageCodec;
  /** Where converters keep their working files (under the data directory). */
  tmpDir: string;
  av?: AvConverter;
}

export function createMediaServices(d: MediaServicesDeps) {
  const { config, store, metrics, now } = d;
  const cache: AdaptedCache = {
    get: (hash, profile) => store.adaptedMedia(hash, profile),
    put: (hash, profile, result) => store.putAdaptedMedia(hash, profile, result),
  };
  const av =
    d.av ?? createFfmpeg({ command: config.media.ffmpeg, timeoutMs: config.media.convert_timeout_ms, maxInputBytes: config.media.max_bytes, tmpDir: d.tmpDir });
  const adapter = new MediaAdapter(d.codec ?? createSharpCodec(), cache, () => metrics.mediaAdaptations.inc(), av);
  const capability = new CapabilityMemory(store, durations(config).noMmsMemoryMs, () => metrics.capabilityHits.inc());
  // Read at each use from the config as SIGHUP left it (the hosted page itself is mounted at start, so
  // turning [media_link] on from nothing needs a restart).
  const links = config.media_link.base_url
    ? new MediaLinks({
        store,
        adapter,
        fetch: (item) => d.fetcher.get(item),
        get baseUrl() {
          return config.media_link.base_url;
        },
        get ttlMs() {
          return durations(config).mediaLinkTtlMs;
        },
        warn: d.warn,
        info: d.info,
      })
    : null;
  // Each MMS carrier adapts to its own profile (max_message_bytes, image_max_edge_px, adapt_media); each
  // SMS carrier cuts a fallback text by its own concatenation and max_parts. Looked up at each use, so
  // a carrier added by SIGHUP gets its own section, not none.
  const sectionOf = <S>(channel: "mms" | "sms", name: string) => carrierEntries(config).find((e) => e.channel === channel && e.section.name === name)?.section as S | undefined;
  const smsBudget = (carrier: SmsCarrier): SmsBudget => {
    const section = sectionOf<SmsSection>("sms", carrier.name) ?? config.carriers.sms;
    return { parts: (text) => countParts(text, (dc) => capacityFor(dc, section.concatenation)), maxParts: section.max_parts };
  };

  const adapt = async (submit: MmsSubmit, carrier: MmsCarrier): Promise<MediaPart[] | GatewayError> => {
    const section = sectionOf<MmsSection>("mms", carrier.name);
    const limits = carrier.limits;
    if (!section?.adapt_media || !limits) return submit.media;
    let r: FitOutcome;
    try {
      r = await adapter.fit(submit.media, {
        carrier: carrier.name,
        maxMessageBytes: limits.maxMessageBytes,
        maxEdge: section.image_max_edge_px,
        measure: (parts) => limits.measure({ ...submit, media: parts }),
      });
    } catch (e) {
      // An image whose header reads but whose pixels do not: retrying would fail the same way.
      r = { code: "media:cannot_fit", message: `adapting the media failed: ${(e as Error).message}` };
    }
    if ("code" in r) {
      metrics.mediaUnfit.inc();
      return r;
    }
    return r.parts;
  };

  return {
    adapter,
    capability,
    links,
    /** Why `carrier` cannot have its audio and video converted (ffmpeg missing), when it adapts media; else null. */
    converterMissing: (carrier: MmsCarrier | SmsCarrier): string | null =>
      av.missing && sectionOf<MmsSection>("mms", carrier.name)?.adapt_media && "limits" in carrier && carrier.limits ? `${av.missing}: audio and video over its limit cannot be converted (install Debian's ffmpeg package or set media.ffmpeg to its path)` : null,
    dispatcherHooks: {
      adapt,
      rememberedNoMms: async (to: string) => {
        const entry = await capability.check(to);
        return entry ? `remembered until ${new Date(entry.until).toISOString()} as unable to take MMS (${entry.reason})` : null;
      },
      fallbackText: links ? (m: StoredMessage, carrier: SmsCarrier) => links.fallbackText(m, smsBudget(carrier)) : undefined,
    },
    /** Pages past ttl_days, expired memories, adaptations unused for ttl_days. */
    purge: () => store.purgeMedia(now() - durations(config).mediaLinkTtlMs),
  };
}
