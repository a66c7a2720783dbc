import { assertEquals } from "../common/assert.ts";
import { generate, readSchemas, TYPES_FILE } from "./gen_types.ts";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";

Deno.test("types.gen.ts is up to date with schemas/ (run scripts/config/gen_types.ts)", async () => {
  const fresh = generate(await readSchemas());
  const tmp = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(tmp, fresh);
  await exec(Deno.execPath(), [
    "fmt",
    "-q",
    "--config",
    new URL("../../deno.json", import.meta.url).pathname,
    tmp,
  ], {
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
  assertEquals(await Deno.readTextFile(TYPES_FILE), await Deno.readTextFile(tmp));
  await Deno.remove(tmp);
});
