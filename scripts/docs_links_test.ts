// Design notes the code cites live in this repository (docs/), not in notes a user of the repository does
// not have. Every `docs/....md` cited in code, workflows, playbooks and docs must exist, and no file may cite
// the project's former working notes (INTEROP.md, CLI.md, TESTBED.md, INTERFACES.md, DESIGN.md), whose
// facts are now in docs/interop.md, docs/cli.md and docs/testbed.md.
import { existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { assertEquals } from "./common/assert.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SEARCHED = ["scripts", "bench", "ansible", ".github", "docs", "README.md"];
const SKIP = new Set(["node_modules", ".wod", ".git", "testdata"]);
const TEXT = /\.(ts|md|ya?ml|sh|py|j2|cfg|json)$/;
const OUTSIDE = /(?<![\w/.-])(?:notes\/)?(?:INTEROP|CLI|TESTBED|INTERFACES|DESIGN)\.md\b/g;
const DOCS_LINK = /(?<![\w/.-])docs\/[\w/.-]+?\.md\b/g;

/**
 * Files of other areas that still cite the former notes (each to point at docs/ when its area is next
 * changed). The test prints the ones that no longer do.
 */
const LEFT_TO_FIX = new Set([
  "scripts/config/template.ts",
  "scripts/backend/sandbox.ts",
  "scripts/backend/seats_test.ts",
  "scripts/mail/README.md",
  "scripts/mail/testing.ts",
  "scripts/cli/drift_test.ts",
  "scripts/demo/flow.ts",
  "scripts/portal/app.ts", // being written now, in the portal's branch
]);

async function* textFiles(path: string): AsyncGenerator<string> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info) return;
  if (info.isFile) {
    if (TEXT.test(path)) yield path;
    return;
  }
  for await (const e of Deno.readDir(path)) {
    if (!SKIP.has(e.name)) yield* textFiles(join(path, e.name));
  }
}

/** Every citation in the searched files: file (relative to the root), line and the cited name. */
async function citations(re: RegExp): Promise<{ file: string; line: number; cited: string }[]> {
  const out: { file: string; line: number; cited: string }[] = [];
  for (const top of SEARCHED) {
    for await (const abs of textFiles(join(ROOT, top))) {
      const file = relative(ROOT, abs).split(sep).join("/");
      if (file === "scripts/docs_links_test.ts") continue;
      const lines = (await Deno.readTextFile(abs)).split("\n");
      lines.forEach((text, i) => {
        for (const m of text.matchAll(re)) out.push({ file, line: i + 1, cited: m[0] });
      });
    }
  }
  return out;
}

Deno.test("every docs/ page cited by code, workflows, playbooks or docs exists", async () => {
  const missing = (await citations(DOCS_LINK))
    // Tests write docs/ files of their own into temporary repositories: only other files count here.
    .filter((c) => !c.file.endsWith("_test.ts") && !existsSync(join(ROOT, c.cited)))
    .map((c) => `${c.file}:${c.line} cites ${c.cited}, which does not exist`);
  assertEquals(missing, []);
});

Deno.test("no file cites design notes that live outside the repository", async () => {
  const found = await citations(OUTSIDE);
  const fixed = [...LEFT_TO_FIX].filter((f) => !found.some((c) => c.file === f));
  if (fixed.length) {
    console.log(`No longer citing outside notes (remove from LEFT_TO_FIX): ${fixed.join(", ")}`);
  }
  const bad = found.filter((c) => !LEFT_TO_FIX.has(c.file)).map((c) =>
    `${c.file}:${c.line} cites ${c.cited}: cite docs/interop.md, docs/cli.md or docs/testbed.md instead`
  );
  assertEquals(bad, []);
});
