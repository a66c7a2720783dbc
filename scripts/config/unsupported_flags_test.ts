// The original's flags wod does not implement (ldap, varpass, compile, monoappliance, multiappliance):
// `true` is refused by validate and by import with the reason at file:line:col, `false` is accepted.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { CORPUS, edit, runWod, withFixture } from "./testing.ts";

const A = "workshops/WKSHP-Alpha/workshop.yaml";

Deno.test("validate refuses each unsupported original flag set to true, with the reason and its position", async () => {
  await withFixture(async (root) => {
    await edit(root, A, "capacity: 15\n", "capacity: 15\nmonoappliance: true\nldap: false\nvarpass: true\n");
    const r = await runWod(root, ["validate"]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    assertStringIncludes(
      out,
      `${A}:6:1: "monoappliance: true" is not supported: the original started one appliance host per seat ` +
        "and passed its address to the notebooks (IP-WKSHP-* variables); wod has no appliance hosts. " +
        "Remove it or set it to false",
    );
    assertStringIncludes(out, `${A}:8:1: "varpass: true" is not supported:`);
    assert(!out.includes('"ldap: true"'), "a false flag was refused");
  });
  await withFixture(async (root) => {
    await edit(root, A, "capacity: 15\n", "capacity: 15\ncompile: false\nmultiappliance: false\n");
    const r = await runWod(root, ["validate"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
  });
});

Deno.test({
  name:
    "import reports an original wod.yml that needs an appliance (corpus WKSHP-Docker101) at the flag's position",
  ignore: !existsSync(join(CORPUS, "wod-notebooks/WKSHP-Docker101/wod.yml")),
  async fn() {
    await withFixture(async (root) => {
      await edit(root, "environments/test.yaml", "students: [1, 50]", "students: [1, 2000]");
      await edit(root, "environments/test.yaml", "base_stdid: 100", "base_stdid: 5000");
      const src = join(CORPUS, "wod-notebooks/WKSHP-Docker101");
      const r = await runWod(root, ["import", src, "--env", "test", "--backend", "b1"]);
      assertEquals(r.code, 1, r.stdout + r.stderr);
      assertStringIncludes(r.stdout + r.stderr, 'wod.yml:12:1: "monoappliance: true" is not supported:');
      assert(!existsSync(join(root, "workshops/WKSHP-Docker101")));
    });
  },
});
