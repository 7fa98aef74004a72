// The layout's rules, read from the source itself (docs/architecture.md explains them): every import
// points down the floors, adapters/ import nothing from src/, SQL only in src/store/, no import
// cycles, no source file over 400 lines, and the architecture map names every folder and the floors.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const root = join(import.meta.dir, "../..");
const doc = readFileSync(join(root, "docs/architecture.md"), "utf8");

/**
 * Top to bottom: a file may import its own floor or any floor below it, never one above. A path ending
 * in "/" is a folder; the longest matching entry decides a file's floor.
 */
const FLOORS: [name: string, paths: string[]][] = [
  ["main", ["src/main.ts"]],
  ["cli", ["src/cli/"]],
  ["app", ["src/app.ts"]],
  ["http", ["src/http/", "src/admin/"]],
  ["pipeline", ["src/pipeline/"]],
  ["services", ["src/observe/", "src/egress/", "src/config.ts", "src/config-schema.ts"]],
  ["carriers", ["adapters/"]],
  ["store", ["src/store/"]],
  ["domain", ["src/domain/", "src/types/"]],
  ["contracts", ["adapters/carrier.ts", "adapters/shared/"]],
];

const MAX_LINES = 400;
/** Still over MAX_LINES while they are being split; each goes from this list when its split lands. */
const BEING_SPLIT: string[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

const files = [...sourceFiles("src"), ...sourceFiles("adapters")];
const text = new Map(files.map((f) => [f, readFileSync(join(root, f), "utf8")]));

/** Every module a file names: static imports and re-exports (type-only ones too), and dynamic imports. */
function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [/^\s*(?:import|export)\s[^"'`;]*?\sfrom\s*["']([^"']+)["']/gm, /^\s*import\s*["']([^"']+)["']/gm, /\bimport\(\s*["']([^"']+)["']\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** Relative imports resolved to repository paths; packages and node: modules are not ours to check. */
function edges(file: string): string[] {
  return importsOf(text.get(file)!)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => normalize(join(dirname(file), spec)));
}

function floorOf(path: string): number {
  let best = -1;
  let bestLength = 0;
  FLOORS.forEach(([, paths], i) => {
    for (const p of paths) {
      const hit = p.endsWith("/") ? path.startsWith(p) : path === p;
      if (hit && p.length > bestLength) [best, bestLength] = [i, p.length];
    }
  });
  return best;
}

const inScope = (path: string) => path.startsWith("src/") || path.startsWith("adapters/");

/** "a → b (floor x above floor y)" for every import that points up. */
function upwardImports(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [file, targets] of graph) {
    for (const t of targets.filter(inScope)) {
      if (floorOf(t) < floorOf(file)) bad.push(`${file} → ${t} (${FLOORS[floorOf(t)]![0]} is above ${FLOORS[floorOf(file)]![0]})`);
    }
  }
  return bad;
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan's. */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)!.includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** SQL statements in string and template literals (the keywords upper-case, as the store writes them). */
function sqlIn(source: string): string[] {
  const literals = source.match(/`(?:\\[\s\S]|[^`\\])*`|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g) ?? [];
  return literals.filter((l) => /\bSELECT\b[\s\S]*?\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b|\bDELETE\s+FROM\b/.test(l));
}

const lineCount = (s: string) => s.split("\n").length - (s.endsWith("\n") ? 1 : 0);

const graph = new Map(files.map((f) => [f, edges(f)]));

describe("layering", () => {
  test("every source file has a floor", () => {
    expect(files.filter((f) => floorOf(f) < 0)).toEqual([]);
  });

  test("every import points down the floors (or stays on its own)", () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  test("adapters/ import nothing from src/", () => {
    const bad = [...graph].flatMap(([f, ts]) => (f.startsWith("adapters/") ? ts.filter((t) => t.startsWith("src/")).map((t) => `${f} → ${t}`) : []));
    expect(bad).toEqual([]);
  });

  test("SQL is written only in src/store/", () => {
    const bad = files.filter((f) => !f.startsWith("src/store/")).flatMap((f) => sqlIn(text.get(f)!).map((l) => `${f}: ${l.slice(0, 80)}`));
    expect(bad).toEqual([]);
  });

  test("no import cycles", () => {
    expect(cycles(graph)).toEqual([]);
  });

  test(`no source file over ${MAX_LINES} lines, but those being split`, () => {
    const over = files.filter((f) => lineCount(text.get(f)!) > MAX_LINES);
    expect(over.filter((f) => !BEING_SPLIT.includes(f))).toEqual([]);
    // A listed file that was split (or is gone) leaves the list, so the list cannot go stale.
    expect(BEING_SPLIT.filter((f) => !over.includes(f))).toEqual([]);
  });
});

describe("docs/architecture.md", () => {
  test("names every folder of src/ and adapters/", () => {
    const folders = [...new Set(files.map((f) => `${dirname(f)}/`))].filter((d) => d !== "src/" && d !== "adapters/");
    expect(folders.filter((d) => !doc.includes(`\`${d}\``))).toEqual([]);
  });

  test("states the floors exactly as this test enforces them", () => {
    const table = FLOORS.map(([name, paths], i) => `${i}  ${name.padEnd(10)} ${paths.join(" ")}`).join("\n");
    expect(doc).toContain(`\`\`\`text\n${table}\n\`\`\``);
  });
});

describe("the checks themselves", () => {
  test("an upward import, a cycle and SQL are each caught", () => {
    const planted = new Map([
      ["src/domain/message.ts", ["src/pipeline/dispatcher.ts"]],
      ["src/pipeline/dispatcher.ts", ["src/domain/message.ts"]],
    ]);
    expect(upwardImports(planted)).toEqual(["src/domain/message.ts → src/pipeline/dispatcher.ts (pipeline is above domain)"]);
    expect(cycles(planted)).toEqual([["src/domain/message.ts", "src/pipeline/dispatcher.ts"]]);
    expect(sqlIn('const q = `SELECT id FROM messages`; const s = "select the carrier";')).toEqual(["`SELECT id FROM messages`"]);
    expect(importsOf('import type {\n  A,\n  B,\n} from "../x.ts";\nexport * from "./y.ts";\nawait import("./z.ts");')).toEqual(["../x.ts", "./y.ts", "./z.ts"]);
  });
});
