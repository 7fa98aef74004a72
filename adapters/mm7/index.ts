// The MM7 adapter's public surface.
export { createMm7Carrier, type Mm7Carrier, type Mm7Deps } from "./mm7-carrier.ts";
export { inboundLimit, mm7Defaults, mm7Presets, optionalSubmitElements, resolveMm7Settings, type Mm7Settings } from "./settings.ts";
export { statusCodes } from "./status.ts";
export type { Logger } from "../carrier.ts";
export { probeMmsc } from "./probe.ts";
export type { ProbeResult } from "../carrier-probe.ts";
