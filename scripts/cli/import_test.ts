// wod import, run as the real CLI on the real corpus (../shared/corpus/wod-notebooks) and on fixtures.
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { CORPUS, edit, runWod, withFixture } from "../config/testing.ts";

const NB = join(CORPUS, "wod-notebooks");

/** The fixture repo, with backend b1's pool widened so the corpus ranges fit. */
async function widen(root: string): Promise<void> {
  await edit(root, "environments/test.yaml", "students: [1, 50]", "students: [1, 2000]");
  await edit(root, "environments/test.yaml", "base_stdid: 100", "base_stdid: 5000");
}

Deno.test("import reports the corpus's bad data with file:line:col and imports nothing from those folders", async () => {
  await withFixture(async (root) => {
    await widen(root);
    const r = await runWod(root, ["import", NB, "--env", "test", "--backend", "b1"]);
    assertEquals(r.code, 1, r.stderr);
    const f = (id: string) => `${NB}/${id}/wod.yml`;
    // A range written [1981-1985].
    assertStringIncludes(
      r.stdout,
      `${
        f("WKSHP-Tensorflow101")
      }:9:8: Invalid range ["1981-1985"]: expected [first, last], two seat numbers; ` +
        `"1981-1985" is one value (did you mean [1981, 1985]?)`,
    );
    // Capacities above their range size.
    assertStringIncludes(
      r.stdout,
      `${f("WKSHP-API101")}:7:11: Capacity 20 is above the 6 seat(s) of range [1, 6] (${
        f("WKSHP-API101")
      }:9:8)`,
    );
    assertStringIncludes(
      r.stdout,
      `${f("WKSHP-GO101")}:7:11: Capacity 20 is above the 4 seat(s) of range [92, 95] (${
        f("WKSHP-GO101")
      }:9:8)`,
    );
    // Overlapping ranges: both folders, both positions, the shared seats.
    assertStringIncludes(
      r.stdout,
      `${
        f("WKSHP-Jupyter-Notebooks101")
      }:9:8: Range [7, 12] of "WKSHP-Jupyter-Notebooks101" overlaps range [10, 15] ` +
        `of "WKSHP-K8S101" (${f("WKSHP-K8S101")}:9:8): seats 10-12`,
    );
    assertStringIncludes(
      r.stdout,
      `${f("WKSHP-K8S101")}:9:8: Range [10, 15] of "WKSHP-K8S101" overlaps range [7, 12] ` +
        `of "WKSHP-Jupyter-Notebooks101" (${f("WKSHP-Jupyter-Notebooks101")}:9:8): seats 10-12`,
    );
    // Overlap with a range already in the environment (WKSHP-Alpha [1, 10] on b1).
    assertStringIncludes(
      r.stdout,
      `${
        f("WKSHP-API101")
      }:9:8: Range [1, 6] of "WKSHP-API101" overlaps range [1, 10] of "WKSHP-Alpha" already in ` +
        `environment "test" (environments/test.yaml:9:7) on backend "b1"`,
    );
    // Capacity 0 violates the schema, reported at the wod.yml key.
    assertStringIncludes(
      r.stdout,
      `${f("WKSHP-K8S101")}:7:11: Out of bounds value for "capacity": must be >= 1`,
    );
    // Metadata-only folder: a warning, not imported.
    assertStringIncludes(
      r.stdout,
      `${NB}/WKSHP-Docker101:1:1: warning: Folder has no notebooks (only wod.yml): not imported`,
    );
    assertStringIncludes(r.stderr, "0 of 20 folder(s) imported");
    for (const id of ["WKSHP-API101", "WKSHP-Python101", "WKSHP-Docker101", "WKSHP-Tensorflow101"]) {
      assert(!existsSync(join(root, "workshops", id)), `${id} must not be imported`);
    }
    assertEquals(
      (await Deno.readTextFile(join(root, "environments/test.yaml"))).includes("WKSHP-API101"),
      false,
    );
  });
});

Deno.test("import of a clean original folder writes workshops/<ID>/ and a range, and the result validates", async () => {
  await withFixture(async (root) => {
    await widen(root);
    const src = await Deno.makeTempDir({ prefix: "wod-import-src-" });
    try {
      cpSync(join(NB, "WKSHP-Python101"), join(src, "WKSHP-Python101"), { recursive: true });
      await edit(src, "WKSHP-Python101/wod.yml", "capacity: 20", "capacity: 6");
      const before = await Deno.readTextFile(join(root, "environments/test.yaml"));
      const r = await runWod(root, ["import", src, "--env", "test", "--backend", "b1"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      assertStringIncludes(
        r.stderr,
        "Imported WKSHP-Python101 -> workshops/WKSHP-Python101/ (3 notebook(s)), range [52, 57]",
      );
      const ws = await Deno.readTextFile(join(root, "workshops/WKSHP-Python101/workshop.yaml"));
      assertStringIncludes(ws, "id: WKSHP-Python101\n");
      assertStringIncludes(ws, "title: Python 101 - A simple introduction to Python programming language\n");
      assertStringIncludes(ws, "capacity: 6\n");
      assertStringIncludes(ws, "replayId: 15\n");
      assert(existsSync(join(root, "workshops/WKSHP-Python101/0-ReadMeFirst.ipynb")));
      assert(existsSync(join(root, "workshops/WKSHP-Python101/Pictures/wod-logo.png")));
      assert(!existsSync(join(root, "workshops/WKSHP-Python101/wod.yml")));
      const after = await Deno.readTextFile(join(root, "environments/test.yaml"));
      // Only one line added, comments and layout kept.
      assertEquals(
        after,
        before.replace(
          "      WKSHP-Beta: [11, 20]\n",
          "      WKSHP-Beta: [11, 20]\n      WKSHP-Python101: [52, 57]\n",
        ),
      );
      const v = await runWod(root, ["validate"]);
      assertEquals(v.code, 0, v.stdout + v.stderr);
      // Importing again is refused (the workshop exists), nothing changes.
      const again = await runWod(root, ["import", src, "--env", "test", "--backend", "b1"]);
      assertEquals(again.code, 1);
      assertStringIncludes(
        again.stdout,
        `Workshop "WKSHP-Python101" already exists in workshops/WKSHP-Python101/`,
      );
      assertEquals(await Deno.readTextFile(join(root, "environments/test.yaml")), after);
    } finally {
      await Deno.remove(src, { recursive: true });
    }
  });
});

Deno.test("import refuses a folder with an invalid notebook or an unknown wod.yml key, naming the position", async () => {
  await withFixture(async (root) => {
    await widen(root);
    const src = await Deno.makeTempDir({ prefix: "wod-import-src-" });
    try {
      cpSync(join(NB, "WKSHP-Python101"), join(src, "WKSHP-Py"), { recursive: true });
      await edit(src, "WKSHP-Py/wod.yml", "capacity: 20", "capacity: 6\nseats: 6");
      await Deno.writeTextFile(join(src, "WKSHP-Py/1-Broken.ipynb"), '{\n "cells": [\n}\n');
      const r = await runWod(root, ["import", src, "--env", "test", "--backend", "b1", "--format", "json"]);
      assertEquals(r.code, 1);
      const diags = JSON.parse(r.stdout) as { file: string; line: number; col: number; message: string }[];
      const brief = diags.map((d) =>
        `${d.file.slice(src.length + 1)}:${d.line}:${d.col}: ${d.message.replace(/: it would be lost.*/, "")}`
      );
      assertEquals(brief, [
        `WKSHP-Py/1-Broken.ipynb:3:1: Notebook is not valid JSON: Unexpected "}": expected a value`,
        `WKSHP-Py/wod.yml:8:1: Unknown key "seats" in wod.yml`,
      ]);
      assert(!existsSync(join(root, "workshops/WKSHP-Py")));
    } finally {
      await Deno.remove(src, { recursive: true });
    }
  });
});

Deno.test("import needs --backend when the environment has several backends", async () => {
  await withFixture(async (root) => {
    const r = await runWod(root, ["import", NB, "--env", "test"]);
    assertEquals(r.code, 1);
    assertStringIncludes(
      r.stderr,
      `Environment "test" has 2 backends (b1, b2): choose one with --backend NAME`,
    );
  });
});
