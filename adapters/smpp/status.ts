// SMPP command_status values and what each means for a submit: the one table of them in the code.

/** SMPP 3.4 §5.1.3 plus the 5.0 additions we may meet; the name is for logs and result messages. */
const STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, "ESME_ROK"],
  [0x01, "ESME_RINVMSGLEN"],
  [0x02, "ESME_RINVCMDLEN"],
  [0x03, "ESME_RINVCMDID"],
  [0x04, "ESME_RINVBNDSTS"],
  [0x05, "ESME_RALYBND"],
  [0x06, "ESME_RINVPRTFLG"],
  [0x07, "ESME_RINVREGDLVFLG"],
  [0x08, "ESME_RSYSERR"],
  [0x0a, "ESME_RINVSRCADR"],
  [0x0b, "ESME_RINVDSTADR"],
  [0x0c, "ESME_RINVMSGID"],
  [0x0d, "ESME_RBINDFAIL"],
  [0x0e, "ESME_RINVPASWD"],
  [0x0f, "ESME_RINVSYSID"],
  [0x11, "ESME_RCANCELFAIL"],
  [0x13, "ESME_RREPLACEFAIL"],
  [0x14, "ESME_RMSGQFUL"],
  [0x15, "ESME_RINVSERTYP"],
  [0x33, "ESME_RINVNUMDESTS"],
  [0x34, "ESME_RINVDLNAME"],
  [0x40, "ESME_RINVDESTFLAG"],
  [0x42, "ESME_RINVSUBREP"],
  [0x43, "ESME_RINVESMCLASS"],
  [0x44, "ESME_RCNTSUBDL"],
  [0x45, "ESME_RSUBMITFAIL"],
  [0x48, "ESME_RINVSRCTON"],
  [0x49, "ESME_RINVSRCNPI"],
  [0x50, "ESME_RINVDSTTON"],
  [0x51, "ESME_RINVDSTNPI"],
  [0x53, "ESME_RINVSYSTYP"],
  [0x54, "ESME_RINVREPFLAG"],
  [0x55, "ESME_RINVNUMMSGS"],
  [0x58, "ESME_RTHROTTLED"],
  [0x61, "ESME_RINVSCHED"],
  [0x62, "ESME_RINVEXPIRY"],
  [0x63, "ESME_RINVDFTMSGID"],
  [0x64, "ESME_RX_T_APPN"],
  [0x65, "ESME_RX_P_APPN"],
  [0x66, "ESME_RX_R_APPN"],
  [0x67, "ESME_RQUERYFAIL"],
  [0xc0, "ESME_RINVOPTPARSTREAM"],
  [0xc1, "ESME_ROPTPARNOTALLWD"],
  [0xc2, "ESME_RINVPARLEN"],
  [0xc3, "ESME_RMISSINGOPTPARAM"],
  [0xc4, "ESME_RINVOPTPARAMVAL"],
  [0xfe, "ESME_RDELIVERYFAILURE"],
  [0xff, "ESME_RUNKNOWNERR"],
  [0x100, "ESME_RSERTYPUNAUTH"],
  [0x101, "ESME_RPROHIBITED"],
  [0x102, "ESME_RSERTYPUNAVAIL"],
  [0x103, "ESME_RSERTYPDENIED"],
  [0x104, "ESME_RINVDCS"],
]);

export const ESME_ROK = 0x00;
export const ESME_RINVMSGLEN = 0x01;
export const ESME_RINVCMDLEN = 0x02;
export const ESME_RSYSERR = 0x08;
export const ESME_RINVCMDID = 0x03;
export const ESME_RTHROTTLED = 0x58;
export const ESME_RX_T_APPN = 0x64;

/** Bind refusals that mean our configuration is wrong: raise the alarm and retry slowly. */
const BIND_CONFIG_FAILURES: ReadonlySet<number> = new Set([0x0d, 0x0e, 0x0f]);

export function statusName(status: number): string {
  return STATUS_NAMES.get(status) ?? "ESME_UNKNOWN";
}

/** "smpp:0x0B": the code the pipeline stores for a refused submit. */
export function statusCode(status: number): string {
  return `smpp:0x${status.toString(16).toUpperCase().padStart(2, "0")}`;
}

export type SubmitStatusClass = "ok" | "throttled" | "temporary" | "permanent";

/**
 * What a submit_sm_resp (or generic_nack) status means. Throttling is its own class because it also
 * pauses the bind. The temporary set is the carrier's to configure; the default {0x08, 0x14, 0x64}
 * matches Kannel and Jasmin. Everything else is final: retrying a bad address only repeats the refusal.
 */
export function classifySubmitStatus(status: number, temporary: readonly number[]): SubmitStatusClass {
  if (status === ESME_ROK) return "ok";
  if (status === ESME_RTHROTTLED) return "throttled";
  return temporary.includes(status) ? "temporary" : "permanent";
}

export function isBindConfigFailure(status: number): boolean {
  return BIND_CONFIG_FAILURES.has(status);
}
