// validate, show --effective, leak-check and catalog, run as the real CLI on temp copies of the fixtures.
import { cpSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertStringIncludes } from "../common/assert.ts";
import { edit, runWod, TESTDATA, withFixture, write } from "../config/testing.ts";

async function withPrivate(fn: (priv: string) => Promise<void>): Promise<void> {
  const priv = await Deno.makeTempDir({ prefix: "wod-private-" });
  try {
    cpSync(join(TESTDATA, "private"), priv, { recursive: true });
    await fn(priv);
  } finally {
    await Deno.remove(priv, { recursive: true });
  }
}

Deno.test("validate prints every error in one run as file:line:col: message and exits 1", async () => {
  await withFixture(async (root) => {
    await edit(root, "environments/test.yaml", "WKSHP-Beta: [11, 20]", "WKSHP-Beta: [8, 60]");
    await edit(root, "workshops/WKSHP-Alpha/workshop.yaml", "duration: 2", "duration: 20");
    const r = await runWod(root, ["validate"]);
    assertEquals(r.code, 1);
    assertEquals(r.stdout.trim().split("\n"), [
      `environments/test.yaml:10:7: Range [8, 60] of "WKSHP-Beta" (environments/test.yaml:10:7) overlaps range [1, 10] of "WKSHP-Alpha" (environments/test.yaml:9:7) on backend "b1": seats 8-10`,
      `environments/test.yaml:10:7: Range [8, 60] of "WKSHP-Beta" is outside the student pool [1, 50] of backend "b1" (environments/test.yaml:6:15)`,
      `workshops/WKSHP-Alpha/workshop.yaml:4:11: Out of bounds value for "duration": must be <= 12`,
    ]);
    assertStringIncludes(r.stderr, "3 error(s)");
  });
});

Deno.test("validate --format github emits ::error annotations, --format json a list", async () => {
  await withFixture(async (root) => {
    await edit(root, "workshops/WKSHP-Beta/workshop.yaml", "capacity: 10", "capacity: 11");
    const gh = await runWod(root, ["validate", "--format", "github"]);
    assertEquals(gh.code, 1);
    assertEquals(
      gh.stdout.trim(),
      `::error file=workshops/WKSHP-Beta/workshop.yaml,line=5,col=11::Capacity 11 of "WKSHP-Beta" is above the 10 seat(s) ` +
        `of its ranges in environment "test" (b1 [11, 20]): lower the capacity or widen the ranges`,
    );
    const js = await runWod(root, ["validate", "--format", "json"]);
    assertEquals(js.code, 1);
    const list = JSON.parse(js.stdout);
    assertEquals(list.length, 1);
    assertEquals([list[0].file, list[0].line, list[0].col, list[0].severity], [
      "workshops/WKSHP-Beta/workshop.yaml",
      5,
      11,
      "error",
    ]);
  });
});

Deno.test("validate of the fixture repo (with and without the private overlay) exits 0", async () => {
  await withFixture(async (root) => {
    const r = await runWod(root, ["validate"]);
    assertEquals([r.code, r.stdout], [0, ""]);
    await withPrivate(async (priv) => {
      const p = await runWod(root, ["validate", "--private", priv]);
      assertEquals(p.code, 0, p.stdout + p.stderr);
      assertStringIncludes(p.stderr, "OK: 3 workshop(s), 1 environment(s)");
    });
  });
});

Deno.test("show --effective prints every merged value with the file:line:col it came from", async () => {
  await withFixture(async (root) => {
    await withPrivate(async (priv) => {
      const r = await runWod(root, ["show", "--effective", "--private", priv, "--env", "test"]);
      assertEquals(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n").map((l) => l.replace(/\s+#/, "  #"));
      assertStringIncludes(
        lines.join("\n"),
        `environments.test.backends[b2].host = "10.20.30.40"  # private:environments/test.yaml:4:11 [private]`,
      );
      assertStringIncludes(
        lines.join("\n"),
        `environments.test.backends[b2].students = [1,20]  # environments/test.yaml:13:15\n`,
      );
      assertStringIncludes(
        lines.join("\n"),
        `environments.test.backends[b2].ranges.WKSHP-Secret = [6,10]  # private:environments/test.yaml:6:21 [private]`,
      );
      const js = await runWod(root, [
        "show",
        "--effective",
        "--json",
        "--private",
        priv,
        "--workshop",
        "WKSHP-Secret",
      ]);
      const list = JSON.parse(js.stdout) as { path: string; file: string; line: number; layer: string }[];
      const title = list.find((v) => v.path === "workshops.WKSHP-Secret.title")!;
      assertEquals([title.file, title.line, title.layer], [
        "private:workshops/WKSHP-Secret/workshop.yaml",
        2,
        "private",
      ]);
    });
  });
});

Deno.test("leak-check exits 0 when clean and 2 naming file:line:col for a private id, value or file", async () => {
  await withFixture(async (root) => {
    await withPrivate(async (priv) => {
      const clean = await runWod(root, ["leak-check", "--private", priv]);
      assertEquals(clean.code, 0, clean.stdout + clean.stderr);
      await write(root, "README.md", "# Demo\n\nSee the WKSHP-Secret workshop.\n");
      await write(root, "notes/hosts.txt", "b2 is at\n  10.20.30.40\n");
      cpSync(
        join(priv, "workshops/WKSHP-Secret/0-ReadMeFirst.ipynb"),
        join(root, "workshops/WKSHP-Beta/2-Extra.ipynb"),
      );
      const r = await runWod(root, ["leak-check", "--private", priv]);
      assertEquals(r.code, 2, r.stdout + r.stderr);
      assertEquals(r.stdout.trim().split("\n"), [
        `README.md:3:9: Private workshop id "WKSHP-Secret" (private:workshops/WKSHP-Secret/workshop.yaml) appears in the public tree`,
        `notes/hosts.txt:2:3: Private value of environments.test.backends[b2].host (private:environments/test.yaml) appears in the public tree`,
        `workshops/WKSHP-Beta/2-Extra.ipynb:1:1: File is a copy of the private file private:workshops/WKSHP-Secret/0-ReadMeFirst.ipynb`,
      ]);
    });
  });
});

Deno.test("leak-check uses a private fork's private/ folder by default, and has nothing to check without one", async () => {
  await withFixture(async (root) => {
    const none = await runWod(root, ["leak-check"]);
    assertEquals(none.code, 0);
    assertStringIncludes(none.stderr, "No private overlay to check");
    cpSync(join(TESTDATA, "private"), join(root, "private"), { recursive: true });
    assertEquals((await runWod(root, ["leak-check"])).code, 0);
    await write(root, "docs/partners.md", "We run WKSHP-Secret for partners.\n");
    const r = await runWod(root, ["leak-check"]);
    assertEquals(r.code, 2, r.stdout + r.stderr);
    assertStringIncludes(
      r.stdout,
      `docs/partners.md:1:8: Private workshop id "WKSHP-Secret" (private:workshops/WKSHP-Secret/workshop.yaml)`,
    );
  });
});

Deno.test("catalog prints the exact JSON of docs/cli.md for an environment", async () => {
  await withFixture(async (root) => {
    await edit(root, "workshops/WKSHP-Beta/workshop.yaml", "capacity: 10", "capacity: 10\nactive: false");
    const r = await runWod(root, ["catalog", "--env", "test"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout), {
      workshops: [
        {
          id: "WKSHP-Alpha",
          title: "Alpha",
          duration: 2,
          active: true,
          seats: [{ backend: "b1", first: 1, last: 10 }, { backend: "b2", first: 1, last: 5 }],
        },
        {
          id: "WKSHP-Beta",
          title: "Beta",
          duration: 4,
          active: false,
          seats: [{ backend: "b1", first: 11, last: 20 }],
        },
      ],
    });
    const bad = await runWod(root, ["catalog", "--env", "nope"]);
    assertEquals(bad.code, 1);
    assertStringIncludes(bad.stderr, `Unknown environment "nope": expected one of test`);
  });
});
