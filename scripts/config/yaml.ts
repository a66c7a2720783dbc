// YAML loading that keeps positions: every value can be traced back to file:line:col.
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node } from "yaml";

export interface Position {
  line: number;
  col: number;
}

export interface Diagnostic {
  /** Path of the file, relative to the repository root (or absolute when outside it). */
  file: string;
  line: number;
  col: number;
  message: string;
  severity: "error" | "warning";
}

export type PathSeg = string | number;

export interface YamlFile {
  file: string;
  text: string;
  /** Parsed value (undefined when the file does not parse). */
  value: unknown;
  doc: Document;
  lineCounter: LineCounter;
  /** Syntax errors, already as diagnostics. */
  errors: Diagnostic[];
  /** Position of the value at `path` (or of the deepest existing ancestor). */
  pos(path: PathSeg[]): Position;
  /** Position of the key at `path` (the value's position when there is no key). */
  keyPos(path: PathSeg[]): Position;
}

function at(lc: LineCounter, offset: number): Position {
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}

function child(node: unknown, seg: PathSeg): { key?: Node; value?: Node } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? pair.key.value : pair.key;
      if (String(k) === String(seg)) {
        return { key: pair.key as Node, value: (pair.value ?? undefined) as Node };
      }
    }
    return undefined;
  }
  if (isSeq(node) && typeof seg === "number") {
    const item = node.items[seg];
    return item === undefined ? undefined : { value: item as Node };
  }
  return undefined;
}

export function parseYaml(file: string, text: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const errors: Diagnostic[] = doc.errors.map((e) => {
    const p = e.linePos?.[0] ?? (e.pos ? lineCounter.linePos(e.pos[0]) : { line: 1, col: 1 });
    const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    return { file, line: p.line, col: p.col, message: `YAML syntax error: ${msg}`, severity: "error" };
  });
  let value: unknown = undefined;
  if (errors.length === 0) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push({
        file,
        line: 1,
        col: 1,
        message: `YAML error: ${err instanceof Error ? err.message : err}`,
        severity: "error",
      });
    }
  }
  const walk = (path: PathSeg[], wantKey: boolean): Position => {
    let node: unknown = doc.contents;
    let best: Position = { line: 1, col: 1 };
    const rangeOf = (n: unknown) => (n as { range?: [number, number, number] } | undefined)?.range;
    const r0 = rangeOf(node);
    if (r0) best = at(lineCounter, r0[0]);
    for (let i = 0; i < path.length; i++) {
      const c = child(node, path[i]);
      if (!c) return best;
      const last = i === path.length - 1;
      const kr = rangeOf(c.key);
      const vr = rangeOf(c.value);
      if (last && wantKey && kr) return at(lineCounter, kr[0]);
      if (vr) best = at(lineCounter, vr[0]);
      else if (kr) best = at(lineCounter, kr[0]);
      node = c.value;
    }
    return best;
  };
  return {
    file,
    text,
    value,
    doc,
    lineCounter,
    errors,
    pos: (path) => walk(path, false),
    keyPos: (path) => walk(path, true),
  };
}

export async function readYaml(absPath: string, displayPath: string): Promise<YamlFile> {
  return parseYaml(displayPath, await Deno.readTextFile(absPath));
}
