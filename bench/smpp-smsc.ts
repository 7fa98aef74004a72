// The SMSC simulator in its own process for the benchmarks: prints {"port":N} and runs until killed.
// SMSC_RECEIPTS=1: answer at once, then send a DELIVRD receipt (TLVs + text) on the same transceiver session.
import { startSmsc } from "../test/peers/smpp-sim.ts";

const receipts = process.env.SMSC_RECEIPTS === "1";
const smsc = await startSmsc({ record: false, ...(receipts ? { sendReceipts: true, receiptFormat: "tlv+text" as const } : {}) });
console.log(JSON.stringify({ port: smsc.port }));
process.on("SIGTERM", () => void smsc.stop().then(() => process.exit(0)));
