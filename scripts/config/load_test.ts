import { assertEquals } from "../common/assert.ts";
import { loadConfig } from "./load.ts";
import { lintConfig } from "./lint.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("the repository's own config loads and lints without errors", async () => {
  const cfg = await loadConfig(ROOT);
  const diags = [...cfg.diagnostics, ...await lintConfig(cfg)];
  assertEquals(diags, []);
  assertEquals(cfg.environments.has("local"), true);
  assertEquals(cfg.workshops.has("WKSHP-Shell101"), true);
});
