import { assertEquals, assertThrows } from "../common/assert.ts";
import { WodError } from "../common/errors.ts";
import { findBackend, loadConfig, requireEnvironment } from "./load.ts";
import { lintConfig } from "./lint.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("the repository's own config loads and lints without errors", async () => {
  const cfg = await loadConfig(ROOT);
  const diags = [...cfg.diagnostics, ...await lintConfig(cfg)];
  assertEquals(diags, []);
  assertEquals(cfg.environments.has("local"), true);
  assertEquals(cfg.workshops.has("WKSHP-Shell101"), true);
});

Deno.test("an unknown environment is one WodError naming the known ones and where environments live", async () => {
  const cfg = await loadConfig(ROOT);
  assertEquals(requireEnvironment(cfg, "local").name, "local");
  const err = assertThrows(() => requireEnvironment(cfg, "nope"));
  assertEquals(err instanceof WodError, true);
  assertEquals(
    err.message,
    `Unknown environment "nope": expected one of ${[...cfg.environments.keys()].sort().join(", ")} ` +
      `(an environment is a file <name>.yaml in ${ROOT}environments)`,
  );
  const backend = assertThrows(() => findBackend(requireEnvironment(cfg, "local"), "nope"));
  assertEquals(backend instanceof WodError, true);
});
