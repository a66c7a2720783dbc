// The module rules of scripts/README.md, checked on the real import graph: Deno's own module graph
// (`deno info --json`, so static, dynamic and type-only imports all count, resolved the way Deno resolves
// them) of every production file under scripts/ (not *_test.ts, not test helpers). A broken rule or a
// cycle fails with the offending edge (file:line). The rule table below is the one in scripts/README.md;
// a test checks the two agree.
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { assertEquals } from "./common/assert.ts";
import { exec } from "./common/exec.ts";

const SCRIPTS = fileURLToPath(new URL(".", import.meta.url));
const ROOT = join(SCRIPTS, "..");

/** Folder of scripts/ -> the folders its production files may import ("." is scripts/*.ts). */
export const RULES: Record<string, string[]> = {
  common: [],
  config: ["common"],
  orders: ["config", "common"],
  git: ["common"],
  notify: ["config", "common"],
  backend: ["config", "common"],
  workflows: ["config", "common"],
  state: ["orders", "git", "config", "common"],
  mail: ["state", "orders", "git", "config", "common"],
  reconcile: ["state", "backend", "notify", "orders", "git", "config", "common"],
  portal: ["state", "notify", "orders", "git", "config", "common"],
  content: ["state", "backend", "config", "common"],
  doctor: ["backend", "config", "common"],
  cli: [
    "reconcile",
    "portal",
    "content",
    "doctor",
    "mail",
    "state",
    "backend",
    "notify",
    "orders",
    "git",
    "workflows",
    "config",
    "common",
  ],
  demo: [
    "cli",
    "portal",
    "reconcile",
    "mail",
    "state",
    "backend",
    "notify",
    "orders",
    "git",
    "config",
    "common",
  ],
  ".": ["cli", "demo", "common"],
  // Test-only folders: their files are not production code, so no rule applies to what they import.
  testing: [],
  e2e: [],
};

/** Folders holding only tests and test helpers. */
const TEST_FOLDERS = new Set(["testing", "e2e"]);

/**
 * Today's imports that break a rule, each waiting for a named change. `from` is a file, `to` a folder
 * (or file) under scripts/. The test passes with them and prints the ones no longer needed.
 */
export const EXCEPTIONS: { from: string; to: string; why: string }[] = [];

/** Test files and test helpers: not production code. */
export function isTestFile(rel: string): boolean {
  const parts = rel.split("/");
  const name = parts[parts.length - 1];
  return name.endsWith("_test.ts") || name === "testing.ts" || name.endsWith("_testing.ts") ||
    parts.includes("testdata") || (parts.length > 1 && TEST_FOLDERS.has(parts[0]));
}

export function folderOf(rel: string): string {
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : ".";
}

export interface Edge {
  from: string;
  to: string;
  line: number;
  kind: "static" | "dynamic" | "type";
}

async function productionFiles(dir = SCRIPTS): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await productionFiles(p));
    else if (e.isFile && e.name.endsWith(".ts")) {
      const rel = relative(SCRIPTS, p).split(sep).join("/");
      if (!isTestFile(rel)) out.push(rel);
    }
  }
  return out.sort();
}

interface InfoDependency {
  code?: { specifier?: string; span?: { start: { line: number } } };
  type?: { specifier?: string; span?: { start: { line: number } } };
  isDynamic?: boolean;
}

/** The import edges between files under scripts/, for every production file (Deno's module graph). */
export async function importGraph(): Promise<{ files: string[]; edges: Edge[] }> {
  const files = await productionFiles();
  const dir = await Deno.makeTempDir({ prefix: "wod-import-graph-" });
  try {
    const probe = join(dir, "probe.ts");
    await Deno.writeTextFile(
      probe,
      files.map((f) => `import ${JSON.stringify(new URL(f, `file://${SCRIPTS}`).href)};`).join("\n") + "\n",
    );
    const res = await exec(Deno.execPath(), ["info", "--json", "--config", join(ROOT, "deno.json"), probe], {
      cwd: ROOT,
    });
    const info = JSON.parse(res.stdout) as {
      modules: {
        specifier: string;
        error?: string;
        dependencies?: (InfoDependency & { specifier: string })[];
      }[];
    };
    const base = new URL(".", `file://${SCRIPTS}`).href;
    const rel = (spec?: string) => spec?.startsWith(base) ? spec.slice(base.length) : undefined;
    const edges: Edge[] = [];
    for (const m of info.modules) {
      const from = rel(m.specifier);
      if (!from || isTestFile(from)) continue;
      if (m.error) throw new Error(`deno info could not load scripts/${from}: ${m.error}`);
      for (const d of m.dependencies ?? []) {
        for (const [res, kind] of [[d.code, d.isDynamic ? "dynamic" : "static"], [d.type, "type"]] as const) {
          const to = rel(res?.specifier);
          if (to) edges.push({ from, to, line: (res?.span?.start.line ?? 0) + 1, kind });
        }
      }
    }
    return { files, edges };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function excepted(e: Edge): (typeof EXCEPTIONS)[number] | undefined {
  return EXCEPTIONS.find((x) =>
    x.from === e.from && (x.to === e.to || (!x.to.endsWith(".ts") && folderOf(e.to) === x.to))
  );
}

/** Every edge that breaks a rule, as "scripts/a/x.ts:3 imports scripts/b/y.ts: a may import only ...". */
export function ruleViolations(edges: Edge[]): { broken: string[]; unused: string[] } {
  const broken: string[] = [];
  const used = new Set<(typeof EXCEPTIONS)[number]>();
  for (const e of edges) {
    const a = folderOf(e.from), b = folderOf(e.to);
    const where = `scripts/${e.from}:${e.line} imports scripts/${e.to} (${e.kind})`;
    if (isTestFile(e.to)) {
      broken.push(`${where}: production code must not import tests or test helpers`);
      continue;
    }
    if (a === b) continue;
    const allowed = RULES[a];
    if (allowed === undefined) {
      broken.push(`${where}: folder scripts/${a}/ has no rule; add it to scripts/README.md and RULES`);
    } else if (!allowed.includes(b)) {
      const x = excepted(e);
      if (x) used.add(x);
      else {
        broken.push(
          `${where}: ${a}/ may import only ${
            allowed.join(", ") || "nothing outside itself"
          } (scripts/README.md)`,
        );
      }
    }
  }
  const unused = EXCEPTIONS.filter((x) => !used.has(x)).map((x) => `${x.from} -> ${x.to} (${x.why})`);
  return { broken, unused };
}

/** The import cycles among files (strongly connected components of more than one file, or a self-loop). */
export function cycles(files: string[], edges: Edge[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), on = new Set<string>();
  const stack: string[] = [], out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return out;
}

Deno.test("every import of production code follows the module rules of scripts/README.md", async () => {
  const { edges } = await importGraph();
  const { broken, unused } = ruleViolations(edges);
  if (unused.length) {
    console.log(
      `Temporary exceptions no longer needed (remove them from EXCEPTIONS):\n  ${unused.join("\n  ")}`,
    );
  }
  assertEquals(broken, [], `Imports that break the module rules:\n  ${broken.join("\n  ")}\n`);
});

Deno.test("no import cycle among production files", async () => {
  const { files, edges } = await importGraph();
  const found = cycles(files, edges).map((scc) => {
    const inside = edges.filter((e) => scc.includes(e.from) && scc.includes(e.to));
    return `cycle of ${scc.length} files:\n    ` +
      inside.map((e) => `scripts/${e.from}:${e.line} imports scripts/${e.to} (${e.kind})`).join("\n    ");
  });
  assertEquals(found, [], `Import cycles:\n  ${found.join("\n  ")}\n`);
});

Deno.test("the rule table has no cycle between folders and every folder of scripts/ has a rule", async () => {
  const folders = Object.keys(RULES);
  const edges: Edge[] = folders.flatMap((a) =>
    RULES[a].map((b) => ({ from: a, to: b, line: 0, kind: "static" }))
  );
  assertEquals(cycles(folders, edges), []);
  for (const b of Object.values(RULES).flat()) assertEquals(folders.includes(b), true, `unknown folder ${b}`);
  const missing: string[] = [];
  for await (const e of Deno.readDir(SCRIPTS)) if (e.isDirectory && !(e.name in RULES)) missing.push(e.name);
  assertEquals(missing, [], "folders of scripts/ without a rule in scripts/README.md and RULES");
});

Deno.test("scripts/README.md states the same rules as this test", async () => {
  const readme = await Deno.readTextFile(join(SCRIPTS, "README.md"));
  const text = readme.slice(readme.indexOf("## Rules"));
  const documented: Record<string, string[]> = {};
  // Rows of the rules table: | `folder` | `a`, `b` (or "nothing") | why |
  for (const m of text.matchAll(/^\| `([a-z0-9.]+)\/?` +\| ([^|]*)\|/gm)) {
    documented[m[1]] = [...m[2].matchAll(/`([a-z0-9.]+)\/?`/g)].map((x) => x[1]);
  }
  const sorted = (r: Record<string, string[]>) =>
    Object.fromEntries(Object.keys(r).sort().map((k) => [k, [...r[k]].sort()]));
  assertEquals(sorted(documented), sorted(RULES));
});

Deno.test("the rule check names a forbidden import and a cycle by file and line", () => {
  const { broken } = ruleViolations([{
    from: "config/load.ts",
    to: "state/store.ts",
    line: 7,
    kind: "static",
  }]);
  assertEquals(broken, [
    "scripts/config/load.ts:7 imports scripts/state/store.ts (static): config/ may import only common (scripts/README.md)",
  ]);
  const loop = cycles(["a.ts", "b.ts", "c.ts"], [
    { from: "a.ts", to: "b.ts", line: 1, kind: "static" },
    { from: "b.ts", to: "a.ts", line: 1, kind: "type" },
    { from: "b.ts", to: "c.ts", line: 2, kind: "static" },
  ]);
  assertEquals(loop, [["a.ts", "b.ts"]]);
});
