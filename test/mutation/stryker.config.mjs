// StrykerJS over the code that keeps the README's promises (`make test-mutation`, not part of `make test`).
// One run per group: each group's mutants run only the test files that exercise that code, so the whole
// thing fits in under an hour on 2 cores. MUTATION_GROUP picks the group; the Makefile runs them all.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/**
 * A line range found by the code's own landmarks (a string the first line contains, a pattern the end line
 * after it matches, exclusive; none = to the end), so an edit above it cannot shift what is mutated.
 */
function span(file, from, to) {
  const lines = readFileSync(file, "utf8").split("\n");
  const a = lines.findIndex((l) => l.includes(from));
  const b = to === undefined ? lines.length : lines.findIndex((l, i) => i > a && (typeof to === "string" ? l.includes(to) : to.test(l)));
  if (a < 0 || b < 0) throw new Error(`${file}: landmark not found: ${a < 0 ? from : to}`);
  return `${file}:${a + 1}-${typeof to === "string" || to === undefined ? b : b + 1}`;
}
const sqlite = (file) => `src/store/sqlite/${file}`;
const pg = (file) => `src/store/postgres/${file}`;
const closingBrace = /^  \}$/;

// An absolute path: the command runs inside Stryker's sandbox copy.
const bun = resolve("node_modules/.bin/bun");
const bunTest = (...files) => `${bun} test --bail --timeout 20000 ${files.join(" ")}`;
// The store's shared tests (the conformance suite) on SQLite alone: its PostgreSQL half runs no code
// mutated here and would cost a database per test per mutant, so it is pointed at no server (skipped).
const sqliteOnly = (command) => `GATEWAY_TEST_PG_URL=postgres://127.0.0.1:1/none ${command}`;
// The same suites on PostgreSQL alone (`-t` keeps the tests named after it, without those of code not
// mutated here: media, the outbox, purge, heartbeats, NOTIFY of inbound events, expired held receipts), each
// test's database a schema of one shared database (test/support/postgres.ts): CREATE DATABASE per test per
// mutant cost too much.
const postgresOnly = (command) =>
  `GATEWAY_TEST_PG_SCHEMAS=1 ${command} -t '^(?!.*(media: adapt|outbox: only|outbox: a busy|purge goes on|heartbeat is shared|inbound message taken|leased by one|expired receipt held)).*(postgres|PostgreSQL)'`;

export const groups = {
  // Message states, final events, outcome kinds.
  domain: {
    mutate: ["src/domain/*.ts", "adapters/shared/backoff.ts"],
    command: sqliteOnly(
      bunTest(
        "test/unit/event.test.ts",
        "test/unit/message-states.test.ts",
        "test/unit/shared-backoff.test.ts",
        "test/unit/receipt-match.test.ts",
        "test/unit/decisions.test.ts",
        "test/integration/store.test.ts",
        "test/integration/store-conformance.test.ts",
      ),
    ),
  },
  // The store's promise paths: intake + dedup, claims, recordSubmit (in doubt), recovery, receipts,
  // purge, and the single place a message becomes final (move/finish/fallbackOrFail/emit).
  store: {
    mutate: [
      sqlite("intake.ts"),
      sqlite("dispatch.ts"),
      span(sqlite("receipts.ts"), "export function applyReceipt(", "/** An inbound message (MO)"),
      span(sqlite("admin.ts"), "export async function purge(", "/** Queue depth and oldest age"),
      span(sqlite("core.ts"), "// ---- inside a write: a decided transition", /^}$/),
    ],
    command: sqliteOnly(bunTest("test/integration/store.test.ts", "test/integration/store-conformance.test.ts", "test/integration/pipeline.test.ts", "test/integration/receipt-id-base.test.ts", "test/integration/durability.test.ts")),
  },
  // The PostgreSQL store's promise paths: intake + dedup (a retried request never makes a second message),
  // claims, recordSubmit (in doubt), recovery, and the transitions and receipts written inside a transaction.
  postgres: {
    mutate: [pg("intake.ts"), pg("dispatch.ts"), span(pg("core.ts"), "// ---- inside a transaction: a decided transition", /^}$/)],
    command: postgresOnly(bunTest("test/integration/postgres-store.test.ts", "test/integration/store-conformance.test.ts")),
  },
  // The SQLite writer: group commit, savepoints, storage failures, the fsync before any write is told, migrations.
  writer: {
    mutate: ["src/store/sqlite/db.ts"],
    command: bunTest("test/integration/group-commit.test.ts", "test/integration/durability.test.ts"),
  },
  // The webhook outbox: batches, signing, what each answer of the callback URL does, redacted log lines, and
  // when each round runs (a fake round timer).
  outbox: {
    mutate: ["src/pipeline/outbox.ts"],
    command: bunTest("test/integration/outbox-schedule.test.ts", "test/integration/outbox.test.ts", "test/integration/durability.test.ts"),
  },
  // Submitting, retrying, fallback, receipts routing: the dispatcher alone on a fake clock and the receipts path
  // on a real store first (fast, and they fail first), standby across two nodes (PostgreSQL), then the whole
  // journeys through real carriers.
  pipeline: {
    mutate: ["src/pipeline/dispatcher.ts", "src/pipeline/receipts.ts"],
    command: bunTest("test/integration/dispatcher.test.ts", "test/integration/dispatcher-answers.test.ts", "test/integration/receipts.test.ts", "test/integration/dispatcher-standby.test.ts", "test/integration/pipeline.test.ts", "test/integration/carriers-e2e.test.ts"),
  },
  // Operator commands (retry, requeue, purge, describe).
  operator: {
    mutate: ["src/admin/operator.ts"],
    command: bunTest("test/unit/operator.test.ts", "test/integration/admin-http.test.ts"),
  },
  // How the adapters classify carrier answers and parse receipts (pure functions, unit tests; SMPP statuses
  // are classified inside the carrier, so its session tests run too).
  classification: {
    mutate: ["adapters/mm7/status.ts", "adapters/mm7/submit-response.ts", "adapters/smpp/status.ts"],
    command: bunTest("test/unit/mm7-status.test.ts", "test/unit/mm7-submit-message.test.ts", "test/unit/smpp-status.test.ts", "test/unit/smpp-receipt.test.ts", "test/unit/smpp-submit.test.ts", "test/unit/smpp-mo.test.ts", "test/unit/smpp-pdu.test.ts", "test/integration/smpp-session.test.ts"),
  },
  // The SMPP receipt parser alone (a pure function): its unit tests kill what the classification group's
  // slower session tests would, in a fraction of the time.
  "smpp-receipt": {
    mutate: ["adapters/smpp/receipt.ts"],
    command: bunTest("test/unit/smpp-receipt.test.ts"),
  },
  // The adapters' in-doubt outcomes: MM7 timeout/stop, SMPP timeout/link loss (real MMSC stub, real SMPP).
  "in-doubt": {
    mutate: [span("adapters/mm7/mm7-carrier.ts", "async function submitOnce(", closingBrace), span("adapters/smpp/smpp-carrier.ts", "function summarise(", closingBrace)],
    command: bunTest("test/integration/mm7-carrier.test.ts", "test/integration/smpp-carrier.test.ts", "test/integration/smpp-session.test.ts"),
  },
};

// Survivors judged equivalent (same observable behaviour), one line each: file:line mutator → replacement: why.
// - adapters/mm7/mm7-carrier.ts submitOnce(): `/^mm7:(http-|bad-response)/` without `^`: every code of this adapter
//   starts with `mm7:`; the warn lines' field objects → `{}`: log fields, not a promise (the messages are asserted).
// - src/domain/decisions.ts transition(): `o.expiresAt !== undefined` → true: adds `expiresAt: undefined`, which
//   both drivers read as "unchanged" (`?? null`, `!== undefined`).
// - src/domain/decisions.ts decideAfterSubmit(): default `routing` → `{}`: `pin` and `elsewhere` read falsy alike.
// - src/domain/decisions.ts decideAfterSubmit(): `result.kind === "temporary"` → true in the in-doubt test: only a
//   temporary result carries `inDoubt` (SubmitResult's type).
// - adapters/mm7/status.ts mmStatuses: `indeterminate: { outcome: "unknown" }` → `{}`: an unlisted MMStatus is
//   `unknown` too.
// - src/pipeline/outbox.ts send(): `status >= 200` → true: fetch never hands a 1xx to the outbox.
// - src/pipeline/outbox.ts stop(): `if (this.timer)` → true: clearing no timer does nothing.
// - src/pipeline/outbox.ts round(): `groups.size > 0` → true / `>= 0`: a read that found any event made a group
//   of it (its limit is at least batch_max_events ≥ 1), so `due.length === limit` already implies it.
// - src/pipeline/outbox.ts token(): the cache test → false, and `{ iat, key, jwt }` → `{}`: signing again gives the
//   same string (HS256 over the same header and iat); the cache saves work, not behaviour.
// - src/pipeline/outbox.ts aboutMessages(): the `catch` → `{}`: every event body is JSON the store wrote.
// - src/store/sqlite/db.ts write(): `if (this.broken)` → false: flush() rejects the queued write with the same error.
// - src/store/sqlite/db.ts write(): `if (!this.scheduled)` → true, `scheduled = true` → false: extra setImmediate
//   flushes find the queue empty (the first one took every write queued in that turn).
// - src/store/sqlite/db.ts flush(): `if (ops.length === 0)` → false: an empty transaction, settled at once.
// - src/store/sqlite/db.ts openDatabase(): `{ create, readwrite, strict }` → `{}` / strict → false: Bun opens
//   read-write and creating by default, and every statement binds positional parameters only.
// - src/store/sqlite/db.ts openDatabase(): `path !== ":memory:"` → true: mkdir of "." (exists) for an in-memory one.
// - src/store/sqlite/db.ts isStorageError(): `^` dropped: SQLite codes always begin with SQLITE_.
// - src/store/sqlite/db.ts flush(): `if (!lone) savepoint` → true, and `if (!lone) release` → true / false / `lone`:
//   a lone write in a savepoint of its own (released or left open until COMMIT, or a RELEASE of none that fails
//   after its result is taken), or grouped savepoints left open until COMMIT, commit or are undone the same.
// - src/store/sqlite/db.ts fail(): `(e as Error)?.message` → `.message`: it only ever gets SQLite's or an fsync's Error.
// - src/store/sqlite/core.ts applyReceiptNow(): `if (!row)` → false: a carrier id row never outlives its message
//   (purge deletes both in one write).
// - src/store/sqlite/dispatch.ts recordSubmit(): `held++` → `held--`, `held === 0` → false: with no held receipt
//   the message is still `submitted`, which verdictAfterHeldReceipts reports as the same verdict.
// - src/store/sqlite/intake.ts lookupRequest(): `if (r)` → true: waiting for the disk before answering "not seen".
// - adapters/smpp/receipt.ts OUTCOME_BY_STAT: each failure word's entry (UNDELIV … SKIPPED, lines 36–42) → `[]`:
//   an unlisted word is `failed` too (the same outcome, and `stat` is the text's word either way).
// - adapters/smpp/receipt.ts parseReceiptText(): `raw.trim()` → `raw` in the one-token branch, and `/\s+/` → `/\s/`
//   there: the key pattern's trailing `\s*` leaves no leading blank, and the first token is the same either way.
// - adapters/smpp/receipt.ts parseReceiptDate(): `/\s+/g` → `/\s/g`: a global replace removes every blank alike.
// - adapters/smpp/receipt.ts parseReceipt(): `stateTlv.length >= 1` → true: an empty TLV's `[0]` is undefined,
//   which no message_state row has.
// - src/store/postgres/intake.ts acceptAll(): `fresh.filter(…)` → `fresh`: the keys just inserted are read back
//   too, and their answers come from `inserted` anyway; `copies.length > 0` → true / `>= 0`: an empty lookup.
// - src/store/postgres/dispatch.ts claimDue(): `applied`/`left` starting with a stray element: Promise.all of a
//   plain value, and no message has that id.
// - src/store/postgres/dispatch.ts recordSubmit(): `ids.length === 0` → false (locks, inserts, held-receipt lookup)
//   and their empty branches given a stray element: statements over no ids, and a result that is not `ok`
//   returns before the lookup is read; `seen.size === 0` → false: as the SQLite one above; default `routing`
//   → `{}`: `pin` and `elsewhere` read falsy alike.
// - src/store/postgres/core.ts apply(): `sent` starting with a stray element (Promise.all of a plain value);
//   `t.expiresAt !== undefined` → false: only the in-memory copy, which no caller of a transition setting a
//   validity reads; applyReceiptIn(): `if (!row)` → false: as the SQLite one above.
// Not covered (a real difference, no test): src/store/postgres/dispatch.ts claimDue() `left.length < LEFT_SCAN`
// → true / `<=` (needs 1000 messages left to other nodes in one claim); src/store/postgres/core.ts applyReceiptIn() the lock keys' map →
// undefined (only serialises a receipt against its submit answer on another node: a race) and
// `if (match.evidence)` → true (learning an id base from a match that proves nothing).
// The intake's key order (sort, compare) only avoids deadlocks between two nodes' groups; its mutants are killed
// by postgres-store.test.ts's deadlock count when the two groups overlap on the server, which is likely, not certain.
// - src/pipeline/dispatcher.ts lane(): `leftDue: false` → true, `maybeDue: true` → false: every pump clears leftDue
//   before its first claim, and wake() sets maybeDue before it pumps.
// - src/pipeline/dispatcher.ts wake(): `.finally(() => this.pumps.delete(p))` → `() => undefined`: a settled pump stays
//   in the set; stop() waits for it settled all the same (memory only).
// - src/pipeline/dispatcher.ts stop(), schedule(): `if (lane.timer)` → true before clearTimeout: clearing null does nothing.
// - src/pipeline/dispatcher.ts schedule(): the first `if (this.stopping) return` → false: the check after the await
//   returns, and the full-lane branch only clears a timer stop() has cleared.
// - src/pipeline/dispatcher.ts track(): the catch's `return false` → true: reached while stopping (a refused answer
//   write on its second try), where wake() does nothing; other errors need a message the store cannot update.
// - src/pipeline/dispatcher.ts submitOne(): `{ media: false }` → `{}` and the media routing `{ pin: false, elsewhere:
//   false }` → `{}`: undefined reads as false.
// - src/pipeline/dispatcher.ts submitOne(): the hand-back loop's `tried` → false, `tried || !target` → `&&`: differ only
//   when the carrier is replaced again during the same submit; `carriers.get(name) === target` → false: a carrier
//   still configured that handed the message back is asked once more and answers `:stopped` again.
// - src/pipeline/dispatcher.ts submitOne(): `!(e instanceof StorageUnavailable)` → false: other errors from
//   recordSubmit (the message moved on meanwhile) cannot be made by a test; they would be retried, not thrown.
// - src/pipeline/dispatcher.ts submitMms(): `this.d.adapt && media.length > 0` → true / `||` / `>= 0`: adapting no
//   media gives no media (adapt is always set, as in src/app.ts).
// - src/pipeline/dispatcher.ts realClock: `clearTimeout` → `() => undefined`: a replaced poll timer still fires, one
//   empty wake. Not equivalent but left (need a wall-clock bound): realClock `now` → `() => undefined` (a NaN delay:
//   the poll fires at once), the latency's `(performance.now() - started) / 1000` arithmetic; and `onFinal?.()`,
//   `rememberedNoMms?.()` → without `?.` (every test passes them, as src/app.ts does).

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
  // MUTATION_REPORT_DIR keeps a re-run from overwriting the report of a run still going.
  jsonReporter: { fileName: `${process.env.MUTATION_REPORT_DIR ?? ".tmp/mutation"}/${name}.json` },
  clearTextReporter: { reportScoreTable: true, allowColor: false },
  tempDirName: ".tmp/stryker",
  ignorePatterns: ["dist", ".tmp", "data", "packaging"],
};
