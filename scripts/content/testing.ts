// Fixtures for test-workshop's tests and bench: a temp repo copy with the example workshops, and a
// workshop whose notebook has a broken cell, a hanging cell and a checked output that changed.
import { cpSync } from "node:fs";
import { join } from "node:path";
import { type CliResult, CORPUS, REPO_ROOT, runWod } from "../config/testing.ts";

export function code(source: string, tags: string[] = [], outputs: unknown[] = []) {
  return {
    cell_type: "code",
    execution_count: null,
    metadata: tags.length ? { tags } : {},
    outputs,
    source: source.split(/(?<=\n)/),
  };
}

export function markdown(source: string) {
  return { cell_type: "markdown", metadata: {}, source: source.split(/(?<=\n)/) };
}

export function notebook(cells: unknown[], kernel = { name: "python3", display_name: "Python 3" }): string {
  return JSON.stringify(
    {
      cells,
      metadata: { kernelspec: { ...kernel, language: "python" }, language_info: { name: "python" } },
      nbformat: 4,
      nbformat_minor: 5,
    },
    null,
    1,
  ) + "\n";
}

/**
 * Seats of the shared sandbox used by test-workshop's tests and bench: 100-119 (the backend area has
 * 1-39, state 40-59, workflows 60-69, e2e and demo 70-79).
 */
export const CONTENT_RANGES: Record<string, [number, number]> = {
  "WKSHP-Shell101": [100, 102],
  "WKSHP-PyBasics101": [103, 105],
  "WKSHP-REST101": [106, 108],
  "WKSHP-Broken101": [109, 111],
  "WKSHP-API101": [112, 114],
  "WKSHP-Python101": [115, 117],
  // 118-119: WKSHP-Shell101 in workflow_test.ts.
};

/** Replace the ranges of the local environment's backend in `root` (capacities follow the ranges). */
export async function setLocalRanges(root: string, ranges: Record<string, [number, number]>): Promise<void> {
  const envFile = join(root, "environments/local.yaml");
  const text = await Deno.readTextFile(envFile);
  const block = / {4}ranges:\n(?: {6}.*\n)+/;
  if (!block.test(text)) throw new Error(`No ranges block in ${envFile}`);
  const lines = Object.entries(ranges).map(([id, [a, b]]) => `      ${id}: [${a}, ${b}]\n`).join("");
  await Deno.writeTextFile(envFile, text.replace(block, `    ranges:\n${lines}`));
  for (const [id, [a, b]] of Object.entries(ranges)) {
    const f = join(root, "workshops", id, "workshop.yaml");
    let w: string;
    try {
      w = await Deno.readTextFile(f);
    } catch {
      continue;
    }
    await Deno.writeTextFile(f, w.replace(/^capacity: \d+$/m, `capacity: ${b - a + 1}`));
  }
}

/** A temp copy of the repository's workshops and environments (no state, no .git), seats 100-119. */
export async function repoCopy(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-content-" });
  for (const d of ["workshops", "environments"]) {
    cpSync(join(REPO_ROOT, d), join(root, d), { recursive: true });
  }
  await setLocalRanges(root, {
    "WKSHP-Shell101": CONTENT_RANGES["WKSHP-Shell101"],
    "WKSHP-PyBasics101": CONTENT_RANGES["WKSHP-PyBasics101"],
    "WKSHP-REST101": CONTENT_RANGES["WKSHP-REST101"],
  });
  return root;
}

/**
 * WKSHP-Broken101 (seats 109-111 of `root`'s local environment): 1-Cells.ipynb has (cell numbers are
 * positions in the notebook) cell 2 passing, cell 3 raising a NameError on its line 2, cell 4 hanging
 * (time.sleep, timeout 3 s), cell 5 printing output that differs from the stored one, cell 6 tagged
 * wod:skip, cell 7 tagged wod:raises, cell 8 a checked output that still matches after normalisation;
 * 2-Pwsh.ipynb names the kernel "powershell", which the sandbox does not have (it has python3 and bash).
 */
export async function addBrokenWorkshop(root: string, hangTimeoutS = 3): Promise<void> {
  const dir = join(root, "workshops/WKSHP-Broken101");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "workshop.yaml"),
    "id: WKSHP-Broken101\ntitle: Broken cells\nduration: 2\ncapacity: 3\ntest:\n  cell_timeout: 30\n  timeout: 300\n",
  );
  await Deno.writeTextFile(
    join(dir, "0-ReadMeFirst.ipynb"),
    notebook([markdown("# Read me first\n"), code("x = 40 + 2\nprint(x)")]),
  );
  await Deno.writeTextFile(
    join(dir, "1-Cells.ipynb"),
    notebook([
      markdown("# Cells\n"),
      code("total = 1\nprint(total)"),
      code("a = 1\nb = undefined_name + a\nprint(b)"),
      code("import time\nfor i in range(1000):\n    time.sleep(1)", [`wod:timeout=${hangTimeoutS}`]),
      code("print('count:', 3)", ["wod:check-output"], [{
        output_type: "stream",
        name: "stdout",
        text: ["count: 2\n"],
      }]),
      code("import urllib.request\nurllib.request.urlopen('https://example.org')", ["wod:skip"]),
      code("1 / 0", ["wod:raises"]),
      code(
        "import getpass, datetime\nprint(getpass.getuser(), datetime.datetime.now().isoformat())",
        ["wod:check-output"],
        [{ output_type: "stream", name: "stdout", text: ["student7 2024-01-02T03:04:05.123456\n"] }],
      ),
    ]),
  );
  await Deno.writeTextFile(
    join(dir, "2-Pwsh.ipynb"),
    notebook([code("Write-Output hello")], { name: "powershell", display_name: "PowerShell" }),
  );
  const envFile = join(root, "environments/local.yaml");
  const text = await Deno.readTextFile(envFile);
  const [a, b] = CONTENT_RANGES["WKSHP-Broken101"];
  await Deno.writeTextFile(
    envFile,
    text.replace("    ranges:\n", `    ranges:\n      WKSHP-Broken101: [${a}, ${b}]\n`),
  );
}

export const CORPUS_NOTEBOOKS = join(CORPUS, "wod-notebooks");

/**
 * Imports corpus workshops (../shared/corpus) into `root` with `wod import`, their ranges moved to
 * CONTENT_RANGES and their capacity corrected to the range size (the originals offer 20 seats in 6).
 */
export async function importCorpus(
  root: string,
  ids: string[],
  opts: { brandingVars?: boolean } = {},
): Promise<CliResult> {
  const src = await Deno.makeTempDir({ prefix: "wod-content-corpus-" });
  try {
    for (const id of ids) {
      cpSync(join(CORPUS_NOTEBOOKS, id), join(src, id), { recursive: true });
      const f = join(src, id, "wod.yml");
      const [a, b] = CONTENT_RANGES[id];
      const text = (await Deno.readTextFile(f))
        .replace(/^range: .*$/m, `range: [${a},${b}]`)
        .replace(/^capacity: .*$/m, `capacity: ${b - a + 1}`);
      await Deno.writeTextFile(f, text);
    }
    const res = await runWod(root, ["import", src, "--env", "local", "--backend", "jup1"]);
    if (opts.brandingVars) {
      // The corpus notebooks use two platform variables the repo's local environment leaves out.
      const envFile = join(root, "environments/local.yaml");
      const text = await Deno.readTextFile(envFile);
      await Deno.writeTextFile(
        envFile,
        text.replace(
          /^vars:\n/m,
          "vars:\n  BRANDINGLOGO: http://localhost/logo.png\n  SURVEYCHALURL: http://localhost/survey-challenge\n",
        ),
      );
    }
    return res;
  } finally {
    await Deno.remove(src, { recursive: true });
  }
}
