// What an SMPP command_status means for a submit and how the operator reads it (last_error, the bind alarm).
import { describe, expect, test } from "bun:test";
import { smppDefaults } from "../../adapters/smpp/settings.ts";
import { classifySubmitStatus, isBindConfigFailure, statusCode, statusName } from "../../adapters/smpp/status.ts";

// SMPP 3.4 §5.1.3 (and the 5.0 additions 0x100–0x104), copied from the specification: the names the
// operator reads in last_error and the bind alarm.
const spec: [number, string][] = [
  [0x00, "ESME_ROK"], [0x01, "ESME_RINVMSGLEN"], [0x02, "ESME_RINVCMDLEN"], [0x03, "ESME_RINVCMDID"],
  [0x04, "ESME_RINVBNDSTS"], [0x05, "ESME_RALYBND"], [0x06, "ESME_RINVPRTFLG"], [0x07, "ESME_RINVREGDLVFLG"],
  [0x08, "ESME_RSYSERR"], [0x0a, "ESME_RINVSRCADR"], [0x0b, "ESME_RINVDSTADR"], [0x0c, "ESME_RINVMSGID"],
  [0x0d, "ESME_RBINDFAIL"], [0x0e, "ESME_RINVPASWD"], [0x0f, "ESME_RINVSYSID"], [0x11, "ESME_RCANCELFAIL"],
  [0x13, "ESME_RREPLACEFAIL"], [0x14, "ESME_RMSGQFUL"], [0x15, "ESME_RINVSERTYP"], [0x33, "ESME_RINVNUMDESTS"],
  [0x34, "ESME_RINVDLNAME"], [0x40, "ESME_RINVDESTFLAG"], [0x42, "ESME_RINVSUBREP"], [0x43, "ESME_RINVESMCLASS"],
  [0x44, "ESME_RCNTSUBDL"], [0x45, "ESME_RSUBMITFAIL"], [0x48, "ESME_RINVSRCTON"], [0x49, "ESME_RINVSRCNPI"],
  [0x50, "ESME_RINVDSTTON"], [0x51, "ESME_RINVDSTNPI"], [0x53, "ESME_RINVSYSTYP"], [0x54, "ESME_RINVREPFLAG"],
  [0x55, "ESME_RINVNUMMSGS"], [0x58, "ESME_RTHROTTLED"], [0x61, "ESME_RINVSCHED"], [0x62, "ESME_RINVEXPIRY"],
  [0x63, "ESME_RINVDFTMSGID"], [0x64, "ESME_RX_T_APPN"], [0x65, "ESME_RX_P_APPN"], [0x66, "ESME_RX_R_APPN"],
  [0x67, "ESME_RQUERYFAIL"], [0xc0, "ESME_RINVOPTPARSTREAM"], [0xc1, "ESME_ROPTPARNOTALLWD"],
  [0xc2, "ESME_RINVPARLEN"], [0xc3, "ESME_RMISSINGOPTPARAM"], [0xc4, "ESME_RINVOPTPARAMVAL"],
  [0xfe, "ESME_RDELIVERYFAILURE"], [0xff, "ESME_RUNKNOWNERR"], [0x100, "ESME_RSERTYPUNAUTH"],
  [0x101, "ESME_RPROHIBITED"], [0x102, "ESME_RSERTYPUNAVAIL"], [0x103, "ESME_RSERTYPDENIED"], [0x104, "ESME_RINVDCS"],
];

describe("SMPP command_status", () => {
  test("every status of the specification is named as the specification names it", () => {
    expect(spec.map(([status]) => [status, statusName(status)])).toEqual(spec);
  });

  test("a reserved or vendor status is named ESME_UNKNOWN, not as a neighbour", () => {
    for (const status of [0x09, 0x10, 0x12, 0x16, 0x57, 0x400, 0xffff]) expect(statusName(status)).toBe("ESME_UNKNOWN");
  });

  test("the stored code is upper-case hex, two digits at least", () => {
    expect(statusCode(0x0b)).toBe("smpp:0x0B");
    expect(statusCode(0x00)).toBe("smpp:0x00");
    expect(statusCode(0xfe)).toBe("smpp:0xFE");
    expect(statusCode(0x104)).toBe("smpp:0x104");
  });

  test("with the default temporary set, a submit is retried only for a system error, a full queue or a temporary application error", () => {
    const temporary = smppDefaults.temporary_status_codes;
    const classes = spec.map(([status]) => classifySubmitStatus(status, temporary));
    expect(classes[0]).toBe("ok");
    expect(spec.filter(([s]) => classifySubmitStatus(s, temporary) === "temporary").map(([, n]) => n)).toEqual([
      "ESME_RSYSERR", "ESME_RMSGQFUL", "ESME_RX_T_APPN",
    ]);
    expect(spec.filter(([s]) => classifySubmitStatus(s, temporary) === "throttled").map(([, n]) => n)).toEqual(["ESME_RTHROTTLED"]);
    expect(classes.filter((c) => c === "permanent")).toHaveLength(spec.length - 5);
  });

  test("the temporary set is the carrier's: a configured status retries, an unconfigured one fails", () => {
    expect(classifySubmitStatus(0x0b, [0x0b])).toBe("temporary");
    expect(classifySubmitStatus(0x08, [])).toBe("permanent");
    // Success and throttling are never reclassified by the list.
    expect(classifySubmitStatus(0x00, [0x00])).toBe("ok");
    expect(classifySubmitStatus(0x58, [0x58])).toBe("throttled");
  });

  test("only a bind refused for system_id, password or a generic bind failure is a configuration alarm", () => {
    expect(spec.filter(([s]) => isBindConfigFailure(s)).map(([, n]) => n)).toEqual(["ESME_RBINDFAIL", "ESME_RINVPASWD", "ESME_RINVSYSID"]);
  });
});
