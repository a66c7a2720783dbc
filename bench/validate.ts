// Benchmark: `wod validate` on a synthetic repo of 1000 workshops on 20 backends with 100,000 seats.
// Prints `validate_1000_workshops_ms: N ms` (median of several in-process runs: load + schema + lint,
// notebooks included) and, from the same run, baselines: only reading and parsing the YAML files, the
// same validate on 100 workshops, and the whole CLI (process start included).
import { join } from "node:path";
import { loadConfig } from "../scripts/config/load.ts";
import { lintConfig } from "../scripts/config/lint.ts";
import { parseYaml } from "../scripts/config/yaml.ts";
import { DENO_CHILD_INHERIT, exec } from "../scripts/common/exec.ts";

const BACKENDS = 20;
const SEATS_PER_BACKEND = 5000;
const RUNS = 5;

function notebook(text: string): string {
  return JSON.stringify(
    {
      cells: [
        { cell_type: "markdown", id: "md1", metadata: {}, source: [text] },
        {
          cell_type: "code",
          execution_count: null,
          id: "code1",
          metadata: {},
          outputs: [],
          source: [
            "print('student{{ STDID }}')\n",
            "{% if MODEWS == 'CHLG' %}\n",
            "# challenge\n",
            "{% endif %}",
          ],
        },
      ],
      metadata: { kernelspec: { name: "python3", display_name: "Python 3", language: "python" } },
      nbformat: 4,
      nbformat_minor: 5,
    },
    null,
    1,
  );
}

/** A repo with `workshops` workshops spread over 20 backends of 5000 seats (100 seats per workshop at 1000). */
async function buildRepo(workshops: number): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "wod-bench-validate-" });
  const perBackend = Math.ceil(workshops / BACKENDS);
  const size = Math.floor(SEATS_PER_BACKEND / perBackend);
  const backends: string[] = [];
  for (let b = 0; b < BACKENDS; b++) {
    const ranges: string[] = [];
    for (let i = 0; i < perBackend; i++) {
      const n = b * perBackend + i;
      if (n >= workshops) break;
      ranges.push(`      WKSHP-Bench${n}: [${i * size + 1}, ${(i + 1) * size}]`);
    }
    backends.push(
      `  - name: jup${b}\n    host: jup${b}.example.org\n    students: [1, ${SEATS_PER_BACKEND}]\n` +
        `    base_stdid: ${b * SEATS_PER_BACKEND}\n    ranges:\n${ranges.join("\n")}`,
    );
  }
  await Deno.mkdir(join(root, "environments"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "environments/bench.yaml"),
    `# yaml-language-server: $schema=../schemas/environment.schema.json\nname: bench\nbackends:\n${
      backends.join("\n")
    }\ntiming:\n  reminder_minutes: 60\nvars:\n  BRANDING: bench\n`,
  );
  for (let n = 0; n < workshops; n++) {
    const dir = join(root, "workshops", `WKSHP-Bench${n}`);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      join(dir, "workshop.yaml"),
      `# yaml-language-server: $schema=../../schemas/workshop.schema.json\nid: WKSHP-Bench${n}\n` +
        `title: Benchmark workshop ${n}\ndescription: A synthetic workshop.\nduration: 2\nactive: true\n` +
        `capacity: ${size}\nentry: 0-ReadMeFirst.ipynb\ncategory: [Bench]\n`,
    );
    await Deno.writeTextFile(
      join(dir, "0-ReadMeFirst.ipynb"),
      notebook(`Welcome student{{ STDID }} to ${n}`),
    );
    await Deno.writeTextFile(join(dir, "1-Lab.ipynb"), notebook(`Lab ${n} on {{ WODBEEXTFQDN }}`));
  }
  return root;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function validate(root: string): Promise<number> {
  const cfg = await loadConfig(root);
  const diags = [...cfg.diagnostics, ...await lintConfig(cfg)];
  const errors = diags.filter((d) => d.severity === "error");
  if (errors.length || cfg.workshops.size === 0) {
    throw new Error(
      `Synthetic repo does not validate: ${errors.slice(0, 3).map((d) => d.message).join("; ")}`,
    );
  }
  return cfg.workshops.size;
}

async function timeIt(fn: () => Promise<unknown>, runs = RUNS): Promise<number> {
  await fn(); // warm-up (module load, schema compilation)
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

async function parseOnly(root: string): Promise<void> {
  const files = [join(root, "environments/bench.yaml")];
  for await (const e of Deno.readDir(join(root, "workshops"))) {
    files.push(join(root, "workshops", e.name, "workshop.yaml"));
  }
  for (const f of files) parseYaml(f, await Deno.readTextFile(f));
}

const big = await buildRepo(1000);
const small = await buildRepo(100);
try {
  const n = await validate(big);
  const seats = BACKENDS * SEATS_PER_BACKEND;
  const ms = await timeIt(() => validate(big));
  const parse = await timeIt(() => parseOnly(big));
  const ms100 = await timeIt(() => validate(small));
  const cli: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const out = await exec(
      Deno.execPath(),
      ["run", "-A", "--quiet", new URL("../scripts/wod.ts", import.meta.url).pathname, "validate"],
      { env: { WOD_ROOT: big }, inherit: DENO_CHILD_INHERIT, allowFailure: true },
    );
    cli.push(performance.now() - t0);
    if (out.code !== 0) throw new Error(`wod validate exited ${out.code} on the synthetic repo`);
  }
  console.log(
    `# ${n} workshops, ${BACKENDS} backends, ${seats} seats, 2 notebooks per workshop; median of ${RUNS}`,
  );
  console.log(`validate_1000_workshops_ms: ${ms.toFixed(0)} ms`);
  console.log(`baseline_parse_yaml_only_1000_ms: ${parse.toFixed(0)} ms`);
  console.log(`validate_100_workshops_ms: ${ms100.toFixed(0)} ms`);
  console.log(`validate_vs_parse_ratio: ${(ms / parse).toFixed(2)} x`);
  console.log(`validate_cli_1000_workshops_ms: ${median(cli).toFixed(0)} ms`);
  console.log(`validate_goal_1000_ms_met: ${ms <= 1000 ? 1 : 0} bool`);
} finally {
  await Deno.remove(big, { recursive: true });
  await Deno.remove(small, { recursive: true });
}
