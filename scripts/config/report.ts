// Diagnostic output formats shared by validate, import and the workflows.
import type { Diagnostic } from "./yaml.ts";
import { WodError } from "../common/errors.ts";

export type OutputFormat = "text" | "github" | "json";

function ghEscape(s: string, prop = false): string {
  let out = s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  if (prop) out = out.replace(/:/g, "%3A").replace(/,/g, "%2C");
  return out;
}

export function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return [...diags].sort((a, b) =>
    (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.col - b.col ||
    (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)
  );
}

/** `file:line:col: message` (warnings: `file:line:col: warning: message`). */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity === "warning" ? "warning: " : ""}${d.message}`;
}

export function formatDiagnostics(diags: Diagnostic[], format: OutputFormat): string {
  const sorted = sortDiagnostics(diags);
  switch (format) {
    case "json":
      return JSON.stringify(
        sorted.map((d) => ({
          file: d.file,
          line: d.line,
          col: d.col,
          severity: d.severity,
          message: d.message,
        })),
        null,
        2,
      );
    case "github":
      return sorted.map((d) =>
        `::${d.severity === "error" ? "error" : "warning"} file=${
          ghEscape(d.file, true)
        },line=${d.line},col=${d.col}::${ghEscape(d.message)}`
      ).join("\n");
    default:
      return sorted.map((d) => formatDiagnostic(d)).join("\n");
  }
}

/** Throws a WodError listing the error diagnostics, if any; `validate`: the command that shows them. */
export function throwOnConfigErrors(diags: Diagnostic[], validate = "deno task wod validate"): void {
  const errors = diags.filter((d) => d.severity === "error");
  if (errors.length) {
    throw new WodError(
      `The config has ${errors.length} error(s); run \`${validate}\`:\n${formatDiagnostics(errors, "text")}`,
    );
  }
}
