// The SMPP adapter's public face: the carrier factory, its settings, and the pieces other layers may
// reasonably reuse (id keys for receipts matching, text segmentation for part counts).

export { createSmppCarrier, type SmppCarrier, type SmppCarrierDeps } from "./smpp-carrier.ts";
export { smppDefaults, resolveSettings, type SmppSettings, type BindMode, type Concatenation, type ReceiptIdBase } from "./settings.ts";
export { idReadings, respKey, receiptKey } from "./message-id.ts";
export { countParts, capacityFor } from "./gsm.ts";
export type { Logger } from "../carrier.ts";
export { probeSmsc } from "./probe.ts";
export type { ProbeResult } from "../carrier-probe.ts";
