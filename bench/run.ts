// `deno task bench [name...]`: runs bench/<name>.ts (all benchmarks when no name is given).
// Each benchmark prints `name: value unit` lines and its baseline from the same run.
import { DENO_CHILD_INHERIT, exec } from "../scripts/common/exec.ts";
const dir = new URL("./", import.meta.url);
const all: string[] = [];
for await (const e of Deno.readDir(dir)) {
  if (
    e.isFile && e.name.endsWith(".ts") && e.name !== "run.ts" && !e.name.endsWith("_test.ts") &&
    !e.name.startsWith("_")
  ) {
    all.push(e.name.slice(0, -3));
  }
}
all.sort();
const wanted = Deno.args.length ? Deno.args : all;
let failed = 0;
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`error: Unknown benchmark "${name}": expected one of ${all.join(", ")}`);
    Deno.exit(1);
  }
  console.error(`== bench ${name}`);
  // Benchmarks read their own knobs (WOD_BENCH_*, BENCH_*) and the sandbox's location.
  const { code } = await exec(Deno.execPath(), ["run", "-A", new URL(`${name}.ts`, dir).pathname], {
    inherit: [...DENO_CHILD_INHERIT, "WOD_BENCH_*", "BENCH_*"],
    output: "inherit",
    allowFailure: true,
  });
  if (code !== 0) {
    console.error(`error: Benchmark "${name}" failed with exit code ${code}`);
    failed++;
  }
}
Deno.exit(failed ? 1 : 0);
