// Reads the StrykerJS JSON reports of `make test-mutation` (.tmp/mutation/<group>.json) and prints the
// per-file score table that docs/reliability.md publishes, then every surviving mutant.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Mutant {
  status: string;
  mutatorName: string;
  replacement?: string;
  location: { start: { line: number; column: number } };
}
interface Report {
  files: Record<string, { mutants: Mutant[] }>;
}

const dir = process.argv[2] ?? ".tmp/mutation";
const rows: string[] = [];
const survivors: string[] = [];
const sum = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, errors: 0 };
for (const name of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const report = JSON.parse(readFileSync(join(dir, name), "utf8")) as Report;
  for (const [file, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
    const n = (s: string) => mutants.filter((m) => m.status === s).length;
    const c = { killed: n("Killed"), timeout: n("Timeout"), survived: n("Survived"), noCoverage: n("NoCoverage"), errors: n("RuntimeError") + n("CompileError") };
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += c[k];
    const valid = c.killed + c.timeout + c.survived + c.noCoverage;
    rows.push(`| ${name.replace(/\.json$/, "")} | \`${file}\` | ${valid} | ${c.killed} | ${c.timeout} | ${c.survived} | ${pct(c.killed + c.timeout, valid)} |`);
    for (const m of mutants.filter((m) => m.status === "Survived" || m.status === "NoCoverage")) {
      survivors.push(`${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} → ${JSON.stringify((m.replacement ?? "").slice(0, 80))}`);
    }
  }
}
const valid = sum.killed + sum.timeout + sum.survived + sum.noCoverage;
console.log("| group | file | mutants | killed | timeout | survived | score |\n|---|---|---|---|---|---|---|");
console.log(rows.join("\n"));
console.log(`| all | | ${valid} | ${sum.killed} | ${sum.timeout} | ${sum.survived} | ${pct(sum.killed + sum.timeout, valid)} |`);
console.log(`\nsurvivors (${survivors.length}):\n${survivors.join("\n")}`);

function pct(a: number, b: number): string {
  return b === 0 ? "–" : `${((100 * a) / b).toFixed(1)} %`;
}
