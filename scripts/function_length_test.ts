// No production function longer than MAX_LINES lines (scripts/README.md, "Size"). Functions are found
// with Deno's own TypeScript parser (the lint plugin API, `Deno.lint.runPlugin`, available in tests), so
// every function counts: declarations, methods, arrow functions and function expressions, each measured
// from its first to its last line, nested closures included in their parent. Production files are those
// of the import rules (not *_test.ts, not test helpers); test helpers that serve many tests
// (HELPERS_MEASURED) are held to the same limit.
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./common/assert.ts";

const SCRIPTS = fileURLToPath(new URL(".", import.meta.url));
export const MAX_LINES = 120;

/** Test helpers held to the production limit all the same (large, shared by many tests). */
const HELPERS_MEASURED = ["testing/github_server.ts"];

export interface FunctionSpan {
  file: string;
  name: string;
  start: number;
  end: number;
  lines: number;
}

function nameOf(node: Deno.lint.Node, parent: Deno.lint.Node | undefined): string {
  const n = node as unknown as { id?: { name?: string }; key?: { name?: string; value?: string } };
  if (n.id?.name) return n.id.name;
  if (n.key) return n.key.name ?? String(n.key.value ?? "(method)");
  const p = parent as unknown as
    | { type: string; id?: { name?: string }; key?: { name?: string; value?: string }; property?: unknown }
    | undefined;
  if (p?.type === "VariableDeclarator" && p.id?.name) return p.id.name;
  if ((p?.type === "Property" || p?.type === "PropertyDefinition") && p.key) {
    return p.key.name ?? String(p.key.value ?? "(property)");
  }
  return "(anonymous)";
}

/** Every function of `source` with its line span (1-based, inclusive). */
export function functionSpans(file: string, source: string): FunctionSpan[] {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === "\n") lineStarts.push(i + 1);
  const lineOf = (offset: number) => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const spans: FunctionSpan[] = [];
  const plugin: Deno.lint.Plugin = {
    name: "wod-size",
    rules: {
      "function-length": {
        create() {
          const visit = (node: Deno.lint.Node) => {
            // A method's FunctionExpression is measured once, as the method.
            const parent = (node as unknown as { parent?: Deno.lint.Node }).parent;
            if (node.type === "FunctionExpression" && parent?.type === "MethodDefinition") return;
            const start = lineOf(node.range[0]);
            const end = lineOf(Math.max(node.range[0], node.range[1] - 1));
            spans.push({ file, name: nameOf(node, parent), start, end, lines: end - start + 1 });
          };
          return {
            FunctionDeclaration: visit,
            FunctionExpression: visit,
            ArrowFunctionExpression: visit,
            MethodDefinition: visit,
          };
        },
      },
    },
  };
  Deno.lint.runPlugin(plugin, file, source);
  return spans;
}

async function measuredFiles(dir = SCRIPTS): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory && e.name !== "node_modules") out.push(...await measuredFiles(p));
    else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
      const rel = relative(SCRIPTS, p).split(sep).join("/");
      if (!isTestFile(rel) || HELPERS_MEASURED.includes(rel)) out.push(rel);
    }
  }
  return out.sort();
}

/** Tests and test helpers (the same split as scripts/import_rules_test.ts). */
const isTestFile = (rel: string) =>
  /(_test|_testing)\.ts$|(^|\/)testing\.ts$|(^|\/)testdata\//.test(rel) || /^(testing|e2e)\//.test(rel);

Deno.test("function length: the measure counts every kind of function, nested ones in their parent", () => {
  const src = [
    "export function outer() {", // 1
    "  const inner = () => {", // 2
    "    return 1;", // 3
    "  };", // 4
    "  return inner();", // 5
    "}", // 6
    "class C {", // 7
    "  method(): number {", // 8
    "    return 2;", // 9
    "  }", // 10
    "}", // 11
    "const f = function () {};", // 12
  ].join("\n");
  const spans = functionSpans("x.ts", src).map((s) => `${s.name}:${s.start}-${s.end}`).sort();
  assertEquals(spans, ["f:12-12", "inner:2-4", "method:8-10", "outer:1-6"]);
});

Deno.test("function length: a function one line over the limit is reported", () => {
  const body = Array.from({ length: MAX_LINES - 2 }, (_, i) => `  const v${i} = ${i};`).join("\n");
  const long = functionSpans("x.ts", `function long() {\n${body}\n  return 0;\n}\n`);
  assertEquals(long[0].lines, MAX_LINES + 1);
});

Deno.test(`function length: no production function is longer than ${MAX_LINES} lines`, async () => {
  const over: string[] = [];
  for (const rel of await measuredFiles()) {
    const spans = functionSpans(rel, await Deno.readTextFile(join(SCRIPTS, rel)));
    for (const s of spans) {
      if (s.lines > MAX_LINES) over.push(`scripts/${rel}:${s.start} ${s.name}: ${s.lines} lines`);
    }
  }
  assert(
    over.length === 0,
    `${over.length} function(s) longer than ${MAX_LINES} lines; split them along their seams:\n  ${
      over.join("\n  ")
    }`,
  );
});
