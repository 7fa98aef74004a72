// The MM7 adapter's face to src/: the carrier factory, its settings and inbound size limit, and the
// MMSC probe. Tests import the internals by path.
export { createMm7Carrier, type Mm7Carrier } from "./mm7-carrier.ts";
export { inboundLimit, mm7Defaults, resolveMm7Settings, type Mm7Settings } from "./settings.ts";
export { probeMmsc } from "./probe.ts";
