// leak-check: does anything of the private repo (a private workshop id, a private file, a private
// environment value) appear in the public tree? Every occurrence as a diagnostic.
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import type { Config } from "./load.ts";
import { WodError } from "../common/errors.ts";
import type { Diagnostic } from "./yaml.ts";
import { offsetToPos } from "./template.ts";

const SKIP_DIRS = new Set([".git", "node_modules", ".wod"]);
const MAX_FILE = 5 * 1024 * 1024;
const MIN_VALUE = 6;
const MIN_FILE = 32;
const MAX_PER_FILE = 20;

interface Token {
  text: string;
  what: string;
}

async function walkFiles(dir: string, skip: string | undefined, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const abs = join(dir, rel);
  if (skip && resolve(abs) === skip) return out;
  for await (const e of Deno.readDir(abs)) {
    if (e.isDirectory && SKIP_DIRS.has(e.name)) continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await walkFiles(dir, skip, p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

function leaves(v: unknown, path: string, out: Map<string, unknown>): void {
  if (v === null || typeof v !== "object") out.set(path, v);
  else if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const name = x && typeof x === "object" && typeof (x as { name?: unknown }).name === "string"
        ? (x as { name: string }).name
        : String(i);
      leaves(x, `${path}[${name}]`, out);
    });
  } else for (const [k, x] of Object.entries(v)) leaves(x, `${path}.${k}`, out);
}

function sha(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Find private ids, files and values in the public tree (`cfg` must be loaded with its privateDir). */
export async function leakCheck(cfg: Config): Promise<Diagnostic[]> {
  const privateDir = cfg.privateDir;
  if (!privateDir) throw new WodError("leak-check needs the private repo: pass --private DIR");
  const tokens: Token[] = [];
  // Public values anywhere: a private value that is also public is not a secret.
  const publicValues = new Set<string>();
  for (const w of cfg.workshops.values()) {
    const src = w.layer === "public" ? w : w.overridden;
    if (src) {
      const m = new Map<string, unknown>();
      leaves(src.value, "", m);
      for (const v of m.values()) if (typeof v === "string") publicValues.add(v);
    }
  }
  for (const e of cfg.environments.values()) {
    for (const l of e.layers) {
      if (l.layer !== "public") continue;
      const m = new Map<string, unknown>();
      leaves(l.yaml.value, "", m);
      for (const v of m.values()) if (typeof v === "string") publicValues.add(v);
    }
  }
  for (const w of cfg.workshops.values()) {
    if (w.layer !== "private" || w.overridden) continue;
    tokens.push({ text: w.id, what: `Private workshop id "${w.id}" (${w.file})` });
    if (w.value.title.length >= MIN_VALUE && !publicValues.has(w.value.title)) {
      tokens.push({ text: w.value.title, what: `Title of private workshop "${w.id}" (${w.file})` });
    }
  }
  for (const e of cfg.environments.values()) {
    for (const l of e.layers) {
      if (l.layer !== "private") continue;
      const m = new Map<string, unknown>();
      leaves(l.yaml.value, `environments.${e.name}`, m);
      for (const [path, v] of m) {
        if (typeof v !== "string" || v.length < MIN_VALUE || publicValues.has(v)) continue;
        if (tokens.some((t) => t.text === v)) continue;
        tokens.push({ text: v, what: `Private value of ${path} (${l.file})` });
      }
    }
  }
  // Private files, by content.
  const privFiles = new Map<string, string>();
  for (const f of await walkFiles(privateDir, undefined)) {
    const data = await Deno.readFile(join(privateDir, f));
    if (data.length >= MIN_FILE && data.length <= MAX_FILE) privFiles.set(sha(data), `private:${f}`);
  }

  const out: Diagnostic[] = [];
  const skip = resolve(privateDir);
  const dec = new TextDecoder("utf-8", { fatal: false });
  for (const f of await walkFiles(cfg.root, skip)) {
    const abs = join(cfg.root, f);
    const info = await Deno.stat(abs);
    if (info.size > MAX_FILE) continue;
    const data = await Deno.readFile(abs);
    const file = relative(cfg.root, abs);
    const copy = data.length >= MIN_FILE ? privFiles.get(sha(data)) : undefined;
    if (copy) {
      out.push({
        file,
        line: 1,
        col: 1,
        message: `File is a copy of the private file ${copy}`,
        severity: "error",
      });
    }
    if (data.subarray(0, 8192).includes(0)) continue;
    const text = dec.decode(data);
    let n = 0;
    for (const t of tokens) {
      for (
        let i = text.indexOf(t.text);
        i >= 0 && n < MAX_PER_FILE;
        i = text.indexOf(t.text, i + t.text.length)
      ) {
        out.push({
          file,
          ...offsetToPos(text, i),
          message: `${t.what} appears in the public tree`,
          severity: "error",
        });
        n++;
      }
    }
  }
  return out;
}
