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
 * A cited Markdown file: a path (`docs/cli.md`, `../shared/DESIGN.md`) or an upper-case document name
 * (`README.md`, `INTEROP.md`); a lower-case bare name (`--markdown result.md`) is an output, not a citation.
 */
const MD_CITED = /(?<![\w/.<>${}-])(?:(?:\.\.?\/)*[\w-]+(?:\/[\w.-]+)+|[A-Z][A-Z0-9_-]*)\.md\b/g;

/** Whether `cited` (in `file`, both relative to the root) names a file of this repository. */
function inRepo(file: string, cited: string): boolean {
  return [join(ROOT, cited), join(ROOT, file, "..", cited)].some((p) =>
    !relative(ROOT, p).startsWith("..") && existsSync(p)
  );
}

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
  const bad = (await citations(OUTSIDE)).map((c) =>
    `${c.file}:${c.line} cites ${c.cited}: cite docs/interop.md, docs/cli.md or docs/testbed.md instead`
  );
  assertEquals(bad, []);
});

Deno.test("every Markdown file cited outside tests is in the repository (relative to the root or the citing file)", async () => {
  const missing = (await citations(MD_CITED))
    .filter((c) => !c.file.endsWith("_test.ts") && !inRepo(c.file, c.cited))
    .map((c) => `${c.file}:${c.line} cites ${c.cited}, which is not in the repository: cite a page of docs/`);
  assertEquals(missing, []);
});

Deno.test("the citation rule catches notes outside the repository and accepts pages in it", () => {
  const cited = (text: string) => [...text.matchAll(MD_CITED)].map((m) => m[0]);
  assertEquals(cited("see ../shared/DESIGN.md and NOTES.md, docs/cli.md, --markdown result.md"), [
    "../shared/DESIGN.md",
    "NOTES.md",
    "docs/cli.md",
  ]);
  assertEquals(inRepo("scripts/x.ts", "docs/cli.md"), true);
  assertEquals(inRepo("scripts/mail/x.ts", "README.md"), true);
  assertEquals(inRepo("scripts/x.ts", "../shared/DESIGN.md"), false);
  assertEquals(inRepo("scripts/x.ts", "NOTES.md"), false);
});
