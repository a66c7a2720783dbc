// Notebook facts for test-workshop: cells and their wod tags, where an error was raised in a cell's
// source (from the kernel's traceback), the text of outputs and the normalisation used by
// `wod:check-output`.
import type { CellOutput } from "./kernel.ts";

export const TAG_SKIP = "wod:skip";
export const TAG_RAISES = "wod:raises";
export const TAG_CHECK = "wod:check-output";
/** `wod:timeout=SECONDS`: this cell's own timeout. */
export const TAG_TIMEOUT = /^wod:timeout=(\d+(?:\.\d+)?)$/;
const KNOWN = new Set([TAG_SKIP, TAG_RAISES, TAG_CHECK]);

export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata?: { tags?: string[]; [k: string]: unknown };
  outputs?: CellOutput[];
}

export interface Notebook {
  cells: NotebookCell[];
  metadata?: { kernelspec?: { name?: string; display_name?: string }; [k: string]: unknown };
}

export function sourceOf(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source ?? "";
}

export interface CellTags {
  skip: boolean;
  raises: boolean;
  checkOutput: boolean;
  timeoutS?: number;
  /** wod:* tags this version does not know (a typo is reported, not ignored). */
  unknown: string[];
}

export function cellTags(cell: NotebookCell): CellTags {
  const tags = Array.isArray(cell.metadata?.tags) ? cell.metadata!.tags!.map(String) : [];
  const out: CellTags = {
    skip: tags.includes(TAG_SKIP),
    raises: tags.includes(TAG_RAISES),
    checkOutput: tags.includes(TAG_CHECK),
    unknown: [],
  };
  for (const t of tags) {
    const m = TAG_TIMEOUT.exec(t);
    if (m) out.timeoutS = Number(m[1]);
    else if (t.startsWith("wod:") && !KNOWN.has(t)) out.unknown.push(t);
  }
  return out;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
export function stripAnsi(s: string): string {
  return s.replace(ANSI, "");
}

/**
 * The 1-based line of the cell's source that raised, from an IPython traceback: the innermost frame
 * that belongs to the cell (IPython 8: "Cell In[7], line 3"; 7.x: "Input In [7], in <cell line: 3>" or
 * "<ipython-input-7-...> in <module>" followed by "----> 3"; syntax errors: 'File "<ipython-input-...>",
 * line 3' or "Cell In[7], line 3"). `executionCount` picks the frames of this very cell.
 */
export function errorLine(traceback: string[], executionCount: number | null): number | undefined {
  const text = stripAnsi(traceback.join("\n"));
  const lines = text.split("\n");
  const frames: { count: number; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    let m = /Cell In\s*\[(\d+)\],\s*line (\d+)/.exec(l);
    if (m) {
      frames.push({ count: Number(m[1]), line: Number(m[2]) });
      continue;
    }
    m = /Input In \[(\d+)\],? in <cell line: (\d+)>/.exec(l);
    if (m) {
      frames.push({ count: Number(m[1]), line: Number(m[2]) });
      continue;
    }
    m = /<ipython-input-(\d+)-[0-9a-f]+>/.exec(l);
    if (m) {
      const inline = /line (\d+)/.exec(l.slice(m.index));
      if (inline) {
        frames.push({ count: Number(m[1]), line: Number(inline[1]) });
        continue;
      }
      for (let j = i + 1; j < lines.length && j < i + 40; j++) {
        const arrow = /^-+>\s*(\d+)/.exec(lines[j]);
        if (arrow) {
          frames.push({ count: Number(m[1]), line: Number(arrow[1]) });
          break;
        }
      }
    }
  }
  const own = frames.filter((f) => executionCount === null || f.count === executionCount);
  return (own.at(-1) ?? frames.at(0))?.line;
}

/** The text a participant sees: streams, text/plain of results and displays, error name and value. */
export function outputText(outputs: CellOutput[]): string {
  const parts: string[] = [];
  for (const o of outputs) {
    if (o.output_type === "stream") parts.push(Array.isArray(o.text) ? o.text.join("") : o.text);
    else if (o.output_type === "error") parts.push(`${o.ename}: ${o.evalue}\n`);
    else {
      const t = o.data?.["text/plain"];
      if (t !== undefined) parts.push((Array.isArray(t) ? t.join("") : String(t)) + "\n");
    }
  }
  return parts.join("");
}

/**
 * The normalisation of `wod:check-output` (docs/maintainers.md), applied to both the stored and the
 * new output before comparing them:
 * - line endings to \n, trailing spaces of each line and trailing blank lines dropped;
 * - student names and numbers: `student12` -> `student<N>`;
 * - times: ISO dates and date-times -> `<TIME>`, clock times `12:34:56(.789)` -> `<TIME>`,
 *   durations `1.23 s`, `45ms`, `3.2 µs` -> `<DURATION>`;
 * - addresses: IPv4 (with port) -> `<ADDR>`, `localhost:PORT` -> `localhost:<PORT>`,
 *   memory addresses `0x7f3a...` -> `0x<ADDR>`, UUIDs -> `<UUID>`.
 */
export function normaliseOutput(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replace(/\bstudent\d+\b/g, "student<N>")
    .replace(/\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?/g, "<TIME>")
    .replace(/\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b/g, "<TIME>")
    .replace(/\b\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s)\b/g, "<DURATION>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<UUID>")
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, "<ADDR>")
    .replace(/\blocalhost:\d+\b/g, "localhost:<PORT>")
    .replace(/\b0x[0-9a-f]{6,}\b/gi, "0x<ADDR>")
    .split("\n").map((l) => l.replace(/[ \t]+$/, "")).join("\n")
    .replace(/\n+$/, "");
}

/** Notebook order: the entry notebook (0-ReadMeFirst.ipynb) first, then by path. */
export function orderNotebooks(paths: string[], entry = "0-ReadMeFirst.ipynb"): string[] {
  const rest = paths.filter((p) => p !== entry).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return paths.includes(entry) ? [entry, ...rest] : rest;
}

/** True when the content has a challenge variant (`{% if MODEWS == 'CHLG' %}`). */
export function hasChallengeMode(text: string): boolean {
  return /MODEWS\s*==\s*["']CHLG["']/.test(text);
}
