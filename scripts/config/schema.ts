// JSON Schema validation (ajv, draft 2020-12) with errors mapped to YAML positions.
import { Ajv2020 } from "ajv/dist/2020";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020";
import addFormatsImport from "ajv-formats";
import type { Diagnostic, PathSeg, YamlFile } from "./yaml.ts";

const addFormats = addFormatsImport as unknown as (ajv: InstanceType<typeof Ajv2020>) => void;

export type SchemaName = "workshop" | "environment" | "order" | "seat";

const SCHEMA_DIR = new URL("../../schemas/", import.meta.url);
let ajv: InstanceType<typeof Ajv2020> | undefined;
const compiled = new Map<SchemaName, ValidateFunction>();

function getAjv(): InstanceType<typeof Ajv2020> {
  if (!ajv) {
    ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(ajv);
  }
  return ajv;
}

export function validator(name: SchemaName): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    const schema = JSON.parse(Deno.readTextFileSync(new URL(`${name}.schema.json`, SCHEMA_DIR)));
    v = getAjv().compile(schema);
    compiled.set(name, v);
  }
  return v;
}

function pointerToPath(ptr: string): PathSeg[] {
  if (ptr === "") return [];
  return ptr.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~")).map((s) =>
    /^\d+$/.test(s) ? Number(s) : s
  );
}

const ID_KEYS = new Set(["id", "name"]);

function valueAt(root: unknown, path: PathSeg[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg as string];
  }
  return cur;
}

function describe(
  e: ErrorObject,
  path: PathSeg[],
  root: unknown,
): { message: string; path: PathSeg[]; key: boolean } {
  const where = path.length ? `"${path.join(".")}"` : "the document";
  const p = e.params as Record<string, unknown>;
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (propertyName !== undefined) {
    return {
      message: `Invalid key "${propertyName}" in ${where}: must match ${p.pattern ?? "the allowed names"} ` +
        `(letters, digits, '-' and '_': shell-safe)`,
      path: [...path, propertyName],
      key: true,
    };
  }
  switch (e.keyword) {
    case "required":
      return { message: `Missing required property "${p.missingProperty}" in ${where}`, path, key: false };
    case "additionalProperties":
      return {
        message: `Unknown property "${p.additionalProperty}" in ${where}`,
        path: [...path, String(p.additionalProperty)],
        key: true,
      };
    case "enum":
      return {
        message: `Invalid value for ${where}: expected one of ${
          (p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")
        }`,
        path,
        key: false,
      };
    case "type":
      return { message: `Invalid type for ${where}: expected ${p.type}`, path, key: false };
    case "pattern": {
      const v = valueAt(root, path);
      const last = path[path.length - 1];
      const safe = typeof last === "string" && ID_KEYS.has(last)
        ? " (letters, digits, '-' and '_': shell-safe)"
        : "";
      return {
        message: `Invalid value ${JSON.stringify(v)} for ${where}: must match ${p.pattern}${safe}`,
        path,
        key: false,
      };
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return { message: `Out of bounds value for ${where}: ${e.message}`, path, key: false };
    default:
      return { message: `Invalid value for ${where}: ${e.message}`, path, key: false };
  }
}

/** Maps a path of the validated value to a file position (for values merged from several files). */
export type Locate = (path: PathSeg[], key: boolean) => { file: string; line: number; col: number };

/** Validate `value` against a schema; every error as a diagnostic at its YAML position. */
export function schemaDiagnostics(
  name: SchemaName,
  value: unknown,
  y?: YamlFile,
  file = y?.file ?? "",
  locate?: Locate,
): Diagnostic[] {
  const v = validator(name);
  if (v(value)) return [];
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of v.errors ?? []) {
    if (
      e.keyword === "if" || e.keyword === "anyOf" || e.keyword === "oneOf" || e.keyword === "propertyNames"
    ) {
      continue;
    }
    const d = describe(e, pointerToPath(e.instancePath), value);
    const at = locate
      ? locate(d.path, d.key)
      : { file, ...(y ? (d.key ? y.keyPos(d.path) : y.pos(d.path)) : { line: 1, col: 1 }) };
    const key = `${at.file}:${at.line}:${at.col}:${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file: at.file, line: at.line, col: at.col, message: d.message, severity: "error" });
  }
  return out;
}
