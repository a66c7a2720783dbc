// Reports of test-workshop: text (one line per failure, a summary per workshop), GitHub annotations
// (`::error file=...`), JSON, and the Markdown table of the validate workflow's PR comment.
import type { Failure, WorkshopResult } from "./runner.ts";

/** `workshops/<ID>/<nb>.ipynb: cell N (line L of the cell): <name>: <message>` (+ mode when CHLG). */
export function failureLine(f: Failure, mode: string): string {
  const where = f.cell === undefined
    ? ""
    : ` cell ${f.cell}${f.line === undefined ? "" : ` (line ${f.line} of the cell)`}`;
  const m = mode === "CHLG" ? " [mode CHLG]" : "";
  return `${f.file}:${where}${where ? ":" : ""} ${f.name}: ${f.message}${m}`;
}

function title(r: WorkshopResult): string {
  return `${r.workshop}${r.mode === "CHLG" ? " (CHLG)" : ""}`;
}

export function summaryLine(r: WorkshopResult): string {
  const c = r.counts;
  return `${r.ok ? "PASS" : "FAIL"} ${title(r)} on ${r.backend} seat ${r.seat}: ${c.run} cells run, ` +
    `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped` +
    (c.notRun ? `, ${c.notRun} not run` : "") +
    ` in ${r.seconds.toFixed(1)} s` + (r.cleanedUp ? "" : " (seat NOT cleaned up)");
}

export function textReport(results: WorkshopResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    for (const f of r.failures) {
      out.push(failureLine(f, r.mode));
      if (f.source) out.push(`    > ${f.source}`);
    }
  }
  for (const r of results) out.push(summaryLine(r));
  const bad = results.filter((r) => !r.ok).length;
  out.push(`${results.length - bad} of ${results.length} workshop run(s) passed`);
  return out.join("\n");
}

function escapeData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}
function escapeProp(s: string): string {
  return escapeData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** GitHub workflow commands: an error annotation per failure on the notebook file, then the text summary. */
export function githubReport(results: WorkshopResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    for (const f of r.failures) {
      const t = f.cell === undefined ? f.name : `cell ${f.cell}${f.line ? ` line ${f.line}` : ""}: ${f.name}`;
      const msg = failureLine(f, r.mode) + (f.source ? `\n> ${f.source}` : "");
      // An UndefinedVariable failure's file carries :line:col.
      const m = /^(.*?):(\d+):(\d+)$/.exec(f.file);
      const where = m ? `file=${escapeProp(m[1])},line=${m[2]},col=${m[3]}` : `file=${escapeProp(f.file)}`;
      out.push(`::error ${where},title=${escapeProp(t)}::${escapeData(msg)}`);
    }
  }
  for (const r of results) out.push(summaryLine(r));
  return out.join("\n");
}

export function jsonReport(results: WorkshopResult[]): string {
  return JSON.stringify({ ok: results.every((r) => r.ok), workshops: results }, null, 2);
}

function md(s: string): string {
  return s.replace(/`/g, "'");
}

/** The PR comment section: one row per workshop run, then the failing cells. */
export function markdownReport(results: WorkshopResult[]): string {
  const out = [
    "### Notebook runs (`wod test-workshop`)",
    "",
    "| Workshop | Mode | Result | Cells run | Passed | Failed | Skipped | Seconds |",
    "|---|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const c = r.counts;
    out.push(
      `| ${r.workshop} | ${r.mode} | ${
        r.ok ? "pass" : "**FAIL**"
      } | ${c.run} | ${c.passed} | ${c.failed} | ` +
        `${c.skipped} | ${r.seconds.toFixed(1)} |`,
    );
  }
  const fails = results.flatMap((r) => r.failures.map((f) => ({ f, r })));
  if (fails.length) {
    out.push("", "Failing cells:", "");
    for (const { f, r } of fails) {
      out.push(`- \`${md(failureLine(f, r.mode))}\`` + (f.source ? `<br>\`> ${md(f.source)}\`` : ""));
    }
  }
  if (results.length === 0) out.push("| (no workshop changed) | | | | | | | |");
  return out.join("\n");
}
