// The SMPP adapter's face to src/: the carrier factory, its settings, the SMSC probe, and the text
// segmentation the media step counts parts with. Tests import the internals by path.

export { createSmppCarrier } from "./smpp-carrier.ts";
export { smppDefaults, resolveSettings, type SmppSettings } from "./settings.ts";
export { countParts, capacityFor } from "./gsm.ts";
export { probeSmsc } from "./probe.ts";
export type { ProbeResult } from "../carrier-probe.ts";
