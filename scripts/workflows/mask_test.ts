import { assertEquals } from "../common/assert.ts";
import { maskForActions } from "./mask.ts";

Deno.test("maskForActions masks each line of a secret, and only inside GitHub Actions", () => {
  const out: string[] = [];
  maskForActions("pw-1\nline2\n", { env: "true", write: (l) => out.push(l) });
  maskForActions("pw-2", { env: "false", write: (l) => out.push(l) });
  assertEquals(out, ["::add-mask::pw-1", "::add-mask::line2"]);
});
