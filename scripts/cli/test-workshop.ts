// wod test-workshop [ID...] --env ENV: execute every notebook of the workshops as a student would, on a
// throwaway seat of a backend of ENV, and report per cell.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { type Mode, testWorkshops, type WorkshopResult } from "../content/runner.ts";
import { githubReport, jsonReport, markdownReport, textReport } from "../content/report.ts";

export const help = `
Usage: deno task wod test-workshop [ID...] --env ENV [--format text|github|json] [--mode WKSHP|CHLG]
                                   [--markdown FILE] [--private DIR]

Execute every notebook of the named workshops (default: every workshop with a seat range in ENV) as a
participant would: take a throwaway seat of the workshop's range on a backend of ENV (the highest seat
that is free in the recorded state and has no running server; the sandbox for "local"), CREATE it
(rendered content, hooks), log in as that student with the new password, run each notebook
(0-ReadMeFirst.ipynb first, then by name) through the student's Jupyter server with the kernel the
notebook names, then CLEANUP the seat, whatever happened (also on Ctrl-C or SIGTERM).
A workshop whose content has {% if MODEWS == 'CHLG' %} is also run in the challenge mode.

Cell tags (cell metadata "tags"): wod:skip (not run), wod:raises (must raise), wod:check-output
(output must equal the stored one after normalisation), wod:timeout=SECONDS. Timeouts default to
test.cell_timeout and test.timeout of workshop.yaml. See docs/maintainers.md.

Failures print as
  workshops/<ID>/<notebook>.ipynb: cell N (line L of the cell): <error name>: <message>
followed by the source line, then a summary per workshop. Exit 1 when any cell failed.

Options:
  --env ENV         environment (environments/ENV.yaml)
  --format FORMAT   text (default), github (workflow annotations) or json
  --mode MODE       run only this mode (WKSHP or CHLG; default: both where the content has CHLG)
  --markdown FILE   also write the Markdown result table (for a PR comment) to FILE
  --private DIR     private repo overlay
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("test-workshop", args, {
    env: { type: "string" },
    format: { type: "string", default: "text" },
    mode: { type: "string" },
    markdown: { type: "string" },
    private: { type: "string" },
  }, true);
  const env = requireOption("test-workshop", values.env, "env");
  const format = values.format as string;
  if (!["text", "github", "json"].includes(format)) {
    throw new UsageError(`Invalid --format "${format}": expected text, github or json`);
  }
  const mode = values.mode as string | undefined;
  if (mode !== undefined && mode !== "WKSHP" && mode !== "CHLG") {
    throw new UsageError(`Invalid --mode "${mode}": expected WKSHP or CHLG`);
  }
  const controller = new AbortController();
  let signalled: Deno.Signal | undefined;
  const onSignal = (sig: Deno.Signal) => () => {
    if (signalled) {
      console.error(`test-workshop: ${sig} again: still cleaning up the test seats, please wait`);
      return;
    }
    signalled = sig;
    console.error(`test-workshop: ${sig}: stopping the notebooks and cleaning up the test seats`);
    controller.abort();
  };
  const handlers: [Deno.Signal, () => void][] = [["SIGINT", onSignal("SIGINT")], [
    "SIGTERM",
    onSignal("SIGTERM"),
  ]];
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  let results: WorkshopResult[];
  try {
    results = await testWorkshops({
      root: repoRoot(),
      privateDir: values.private as string | undefined,
      env,
      workshops: positionals,
      modes: mode ? [mode as Mode] : undefined,
      log: (l) => console.error(l),
      signal: controller.signal,
    });
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
  if (values.markdown) await Deno.writeTextFile(values.markdown as string, markdownReport(results) + "\n");
  console.log(
    format === "json"
      ? jsonReport(results)
      : format === "github"
      ? githubReport(results)
      : textReport(results),
  );
  if (signalled) return signalled === "SIGINT" ? 130 : 143;
  return results.every((r) => r.ok) ? 0 : 1;
}
