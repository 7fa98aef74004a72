// The SMSC simulator in its own process for bench/smpp.ts: prints {"port":N} and runs until killed.
import { startSmsc } from "../test/integration/smpp-sim.ts";

const smsc = await startSmsc({ record: false });
console.log(JSON.stringify({ port: smsc.port }));
process.on("SIGTERM", () => void smsc.stop().then(() => process.exit(0)));
