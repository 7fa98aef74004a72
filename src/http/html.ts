// The one HTML escape of every page the gateway serves (status page, its charts, the hosted media page).

/** Any value as HTML text or an attribute value. */
export const esc = (v: unknown) =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
