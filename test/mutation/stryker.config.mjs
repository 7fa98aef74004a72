// StrykerJS over the code that keeps the README's promises (`make test-mutation`, not part of `make test`).
// One run per group: each group's mutants run only the test files that exercise that code, so the whole
// thing fits in under an hour on 2 cores. MUTATION_GROUP picks the group; the Makefile runs them all.
import { resolve } from "node:path";

// An absolute path: the command runs inside Stryker's sandbox copy.
const bun = resolve("node_modules/.bin/bun");
const bunTest = (...files) => `${bun} test --bail --timeout 20000 ${files.join(" ")}`;

export const groups = {
  // Message states, final events, outcome kinds.
  domain: {
    mutate: ["src/domain/*.ts"],
    command: bunTest("test/unit/event.test.ts", "test/unit/message-states.test.ts", "test/unit/receipt-match.test.ts", "test/unit/decisions.test.ts", "test/integration/store.test.ts"),
  },
  // The store's promise paths: intake + dedup, claims, recordSubmit (in doubt), recovery, receipts,
  // purge, and the single place a message becomes final (move/finish/fallbackOrFail/emit).
  store: {
    mutate: ["src/store/sqlite/store.ts:183-402", "src/store/sqlite/store.ts:554-579", "src/store/sqlite/store.ts:594-631"],
    command: bunTest("test/integration/store.test.ts", "test/integration/pipeline.test.ts", "test/integration/receipt-id-base.test.ts"),
  },
  // Submitting, retrying, fallback, receipts routing, operator commands.
  pipeline: {
    mutate: ["src/pipeline/dispatcher.ts", "src/pipeline/receipts.ts", "src/pipeline/operator.ts"],
    command: bunTest("test/unit/operator.test.ts", "test/integration/pipeline.test.ts", "test/integration/carriers-e2e.test.ts", "test/integration/admin-http.test.ts"),
  },
  // How the adapters classify carrier answers and parse receipts (pure functions, unit tests; SMPP statuses
  // are classified inside the carrier, so its session tests run too).
  classification: {
    mutate: ["adapters/mm7/status.ts", "adapters/mm7/submit-response.ts", "adapters/smpp/status.ts", "adapters/smpp/receipt.ts"],
    command: bunTest("test/unit/mm7-status.test.ts", "test/unit/mm7-submit.test.ts", "test/unit/smpp-receipt.test.ts", "test/unit/smpp-message.test.ts", "test/unit/smpp-pdu.test.ts", "test/integration/smpp-session.test.ts"),
  },
  // The adapters' in-doubt outcomes: MM7 timeout/stop, SMPP timeout/link loss (real MMSC stub, real SMPP).
  "in-doubt": {
    mutate: ["adapters/mm7/mm7-carrier.ts:43-55", "adapters/smpp/smpp-carrier.ts:97-122"],
    command: bunTest("test/integration/mm7-submit.test.ts", "test/integration/smpp-messages.test.ts", "test/integration/smpp-session.test.ts"),
  },
};

const name = process.env.MUTATION_GROUP ?? "domain";
const group = groups[name];
if (!group) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(groups).join(", ")}`);

export default {
  testRunner: "command",
  commandRunner: { command: group.command },
  mutate: group.mutate,
  coverageAnalysis: "off",
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 15000,
  // Log and error message texts are not promises; every other mutator runs.
  mutator: { excludedMutations: ["StringLiteral"] },
  reporters: ["json", "clear-text", "progress"],
  jsonReporter: { fileName: `.tmp/mutation/${name}.json` },
  clearTextReporter: { reportScoreTable: true, allowColor: false },
  tempDirName: ".tmp/stryker",
  ignorePatterns: ["dist", ".tmp", "data", "packaging"],
};
