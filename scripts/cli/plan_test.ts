// wod plan against a real git repository (a temp copy of the fixture repo, committed with real git).
import { join } from "node:path";
import { assertEquals, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { edit, runWod, withFixture, write } from "../config/testing.ts";

const GIT_ENV = {
  GIT_AUTHOR_NAME: "wod test",
  GIT_AUTHOR_EMAIL: "test@localhost",
  GIT_COMMITTER_NAME: "wod test",
  GIT_COMMITTER_EMAIL: "test@localhost",
  HOME: "/nonexistent",
  GIT_CONFIG_NOSYSTEM: "1",
  PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
};

async function gitInit(root: string): Promise<void> {
  await exec("git", ["init", "-q", "-b", "main", root], { env: GIT_ENV });
  await exec("git", ["-C", root, "add", "-A"], { env: GIT_ENV });
  await exec("git", ["-C", root, "commit", "-q", "-m", "base"], { env: GIT_ENV });
}

function seat(backend: string, n: number, workshop: string, status = "active"): string {
  return JSON.stringify({ backend, seat: n, workshop, status, orders: [`order-${n}`] }, null, 2) + "\n";
}

Deno.test("plan with no change says so and exits 0", async () => {
  await withFixture(async (root) => {
    await gitInit(root);
    const r = await runWod(root, ["plan", "--base", "main"]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stdout, "No changes.");
  });
});

Deno.test("plan lists workshops added and changed, ranges moved and capacity per backend", async () => {
  await withFixture(async (root) => {
    await gitInit(root);
    await write(
      root,
      "workshops/WKSHP-Gamma/workshop.yaml",
      "id: WKSHP-Gamma\ntitle: Gamma\nduration: 2\ncapacity: 5\n",
    );
    await write(
      root,
      "workshops/WKSHP-Gamma/0-ReadMeFirst.ipynb",
      await Deno.readTextFile(join(root, "workshops/WKSHP-Beta/0-ReadMeFirst.ipynb")),
    );
    await edit(
      root,
      "environments/test.yaml",
      "WKSHP-Beta: [11, 20]",
      "WKSHP-Beta: [11, 25]\n      WKSHP-Gamma: [26, 30]",
    );
    await edit(root, "workshops/WKSHP-Beta/workshop.yaml", "title: Beta", "title: Beta, second edition");
    const r = await runWod(root, ["plan", "--base", "main"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    const text = r.stdout;
    assertStringIncludes(text, '  ~ WKSHP-Beta (changed)\n      title "Beta" -> "Beta, second edition"\n');
    assertStringIncludes(text, "  + WKSHP-Gamma (added)\n");
    assertStringIncludes(
      text,
      "  backend b1 (changed): 20 -> 30 seat(s) in ranges, pool [1, 50] (50 students)\n",
    );
    assertStringIncludes(
      text,
      "    ~ WKSHP-Beta [11, 20] -> [11, 25] (moved)\n    + WKSHP-Gamma [26, 30] (added)",
    );
    assertEquals(text.includes("DANGER"), false);
    const md = await runWod(root, ["plan", "--base", "main", "--format", "markdown"]);
    assertEquals(md.code, 0);
    assertStringIncludes(md.stdout, "| `WKSHP-Gamma` | added |  |");
    assertStringIncludes(
      md.stdout,
      "| b1 | changed | 20 -> 30 seat(s) in ranges, pool [1, 50] (50 students) |",
    );
  });
});

Deno.test("plan flags occupied seats whose holder would change as danger and exits 2", async () => {
  await withFixture(async (root) => {
    await write(root, "state/test/b1/8.json", seat("b1", 8, "WKSHP-Alpha"));
    await write(root, "state/test/b1/3.json", seat("b1", 3, "WKSHP-Alpha"));
    await write(root, "state/test/b1/9.json", seat("b1", 9, "WKSHP-Alpha", "free"));
    await gitInit(root);
    // Shrink Alpha on b1 to [1, 5] and give 6-10 to Beta; also change Alpha's content.
    await edit(root, "environments/test.yaml", "WKSHP-Alpha: [1, 10]", "WKSHP-Alpha: [1, 5]");
    await edit(root, "environments/test.yaml", "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [6, 20]");
    await edit(root, "workshops/WKSHP-Alpha/workshop.yaml", "capacity: 15", "capacity: 10");
    await edit(root, "workshops/WKSHP-Alpha/0-ReadMeFirst.ipynb", "Hello", "Hi");
    const r = await runWod(root, ["plan", "--base", "main"]);
    assertEquals(r.code, 2, r.stdout + r.stderr);
    assertStringIncludes(
      r.stdout,
      "DANGER: 1 occupied seat(s) would be affected:\n" +
        "  test/b1 seat 8 (active, WKSHP-Alpha): held by WKSHP-Alpha at base, by WKSHP-Beta after this change",
    );
    assertStringIncludes(r.stdout, "      content: 0-ReadMeFirst.ipynb (changed)");
    assertStringIncludes(
      r.stdout,
      "keep their current content until their next CREATE:\n  test/b1 seat 3 (WKSHP-Alpha)",
    );
    const md = await runWod(root, ["plan", "--base", "main", "--format", "markdown"]);
    assertEquals(md.code, 2);
    assertStringIncludes(md.stdout, "| test | b1 | 8 | active | WKSHP-Alpha | WKSHP-Alpha | WKSHP-Beta |");
  });
});

Deno.test("plan refuses an unknown revision and a broken working tree (exit 1)", async () => {
  await withFixture(async (root) => {
    await gitInit(root);
    const r = await runWod(root, ["plan", "--base", "no-such-branch"]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `Unknown git revision "no-such-branch"`);
    await edit(root, "workshops/WKSHP-Beta/workshop.yaml", "duration: 4", "duration: forty");
    const b = await runWod(root, ["plan", "--base", "main"]);
    assertEquals(b.code, 1);
    assertStringIncludes(
      b.stderr,
      `workshops/WKSHP-Beta/workshop.yaml:4:11: Invalid type for "duration": expected number`,
    );
  });
});
