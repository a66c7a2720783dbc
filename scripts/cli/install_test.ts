// The `wod install` command: its help names every value it takes from the environment, bad input is
// refused before anything runs, and on the sandbox a second run says exactly "nothing to do".
import { join } from "node:path";
import { assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { runWod, sandboxEnvYaml, withFixture, write } from "../config/testing.ts";
import { INSTALL_VARS } from "../backend/install.ts";
import { ensureSandbox, installSandbox, SANDBOX_DIR } from "../backend/sandbox.ts";

Deno.test("wod install --help lists every environment field it passes and the role variable it becomes", async () => {
  await withFixture(async (root) => {
    const r = await runWod(root, ["install", "--help"]);
    assertEquals(r.code, 0);
    for (const m of INSTALL_VARS) {
      assertMatch(r.stdout, new RegExp(`${m.field.replace(/[[\]]/g, "\\$&")} +-> ${m.variable}`));
    }
    assertStringIncludes(r.stdout, "--check");
    assertStringIncludes(r.stdout, "--control HOST");
  });
});

Deno.test("wod install refuses an unknown backend or environment before running anything", async () => {
  await withFixture(async (root) => {
    const bad = await runWod(root, ["install", "--env", "test", "--backend", "b9"]);
    assertEquals(bad.code, 1);
    assertStringIncludes(bad.stderr, 'Unknown backend "b9" in environment "test": expected one of b1, b2');
    const env = await runWod(root, ["install", "--env", "nope"]);
    assertEquals(env.code, 1);
    assertStringIncludes(env.stderr, 'Unknown environment "nope"');
    const none = await runWod(root, ["install"]);
    assertEquals(none.code, 1);
    assertStringIncludes(none.stderr, "Missing required option --env");
  });
});

Deno.test({
  name:
    "wod install on an installed sandbox: one line per step, then exactly nothing to do (changed=0), in a 0600 log",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureSandbox();
    await installSandbox(); // brings the shared sandbox to this repository's install
    await withFixture(async (root) => {
      await write(root, "environments/local.yaml", sandboxEnvYaml({}));
      const env = { WOD_SANDBOX_DIR: SANDBOX_DIR };
      const r = await runWod(root, ["install", "--env", "local"], env);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      assertMatch(r.stdout, /^\[jup1\] wod_backend\/accounts: ok \(\d+ tasks, \d+\.\d s\)$/m);
      assertMatch(r.stdout, /^\[jup1\] nothing to do: changed=0 \(\d+\.\d s\); full log: .*\.log$/m);
      const log = r.stdout.match(/full log: (\S+\.log)$/m)![1];
      assertEquals(log.startsWith(join(root, ".wod/install/local/")), true, log);
      assertEquals((await Deno.stat(log)).mode! & 0o777, 0o600);
      const check = await runWod(root, ["install", "--env", "local", "--check"], env);
      assertEquals(check.code, 0, check.stdout + check.stderr);
      assertMatch(check.stdout, /^\[jup1\] nothing to do: changed=0/m);
    });
  },
});
