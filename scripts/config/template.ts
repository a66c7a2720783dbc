// Workshop content is a Jinja2 template rendered per seat. The checker (`wod validate`) and the
// renderer (the seat runner) are ONE program, scripts/config/jinja_sandbox.py: it parses with Jinja2's
// own parser and renders in Jinja2's SandboxedEnvironment with only the platform's variables, so what
// validate accepts is exactly what a seat gets. No lookup, call, attribute access or loop is allowed
// (the controller that renders holds the environment's secrets), and the program runs with an empty
// environment. This module is its TypeScript side: which files are templates, which variables exist,
// and the two calls.
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { exec } from "../common/exec.ts";

export const JINJA_SANDBOX = new URL("./jinja_sandbox.py", import.meta.url).pathname;
/** Debian's Python with python3-jinja2 (.ci/apt-packages.txt): the interpreter Ansible itself runs on. */
export const PYTHON = "/usr/bin/python3";

/** Variables every seat gets from the platform (STDID, PASSSTU, MODEWS, ... : INTEROP's list). */
export const SEAT_VARS = [
  "STDID",
  "PASSSTU",
  "MODEWS",
  "WKSHP",
  "WORKSHOP",
  "HTTPPORT",
  "WODBEEXTFQDN",
  "hostvars",
  "inventory_hostname",
];

/** Branding variables: from the environment's `vars`, rendered empty when it does not set them. */
export const BRANDING_VARS = [
  "BRANDING",
  "BRANDINGWOD",
  "BRANDINGLOGO",
  "BRANDINGURL",
  "SURVEYURL",
  "SURVEYCHALURL",
];

/** Every variable content may use besides the environment's and the workshop's `vars`. */
export const PLATFORM_VARS = new Set([...SEAT_VARS, ...BRANDING_VARS]);

/** Files larger than this are copied as they are, never rendered. */
export const MAX_TEMPLATE_BYTES = 20_000_000;

/** Whether content bytes are a template the backend renders: UTF-8 text without NUL, not too large. */
export function isTemplateText(data: Uint8Array): boolean {
  if (data.length >= MAX_TEMPLATE_BYTES || data.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data);
    return true;
  } catch {
    return false;
  }
}

/** Whether rendering can change the text at all (no `{{`, `{%` or `{#`: it renders to itself). */
export function hasTemplateMarkers(text: string): boolean {
  return /\{[{%#]/.test(text);
}

/** Content files of a workshop folder (relative, sorted): no dot files, no top-level hooks/ nor workshop.yaml. */
export async function contentFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.name.startsWith(".")) continue;
    if (!rel && (e.name === "hooks" || e.name === "workshop.yaml")) continue;
    if (e.isDirectory) out.push(...await contentFiles(dir, p));
    else if (e.isFile) out.push(p);
  }
  return out.sort();
}

export interface TemplateCheck {
  /** Absolute path of the file. */
  path: string;
  /** Variables it may use. */
  vars: string[];
}

export interface TemplateProblem {
  path: string;
  line: number;
  col: number;
  message: string;
}

async function runSandbox(mode: "check" | "render", spec: unknown): Promise<ReturnType<typeof exec>> {
  // An empty environment: nothing of the controller's (secrets included) is there to be read.
  return await exec(PYTHON, ["-I", "-X", "utf8", JINJA_SANDBOX, mode], {
    bare: true,
    stdin: JSON.stringify(spec),
    allowFailure: true,
    timeoutMs: 600_000,
  });
}

function parseReply(
  mode: string,
  r: { code: number; stdout: string; stderr: string },
): Record<string, unknown> {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new WodError(
      `The template ${mode} (${PYTHON} ${JINJA_SANDBOX}) failed with exit code ${r.code}: ` +
        `${r.stderr.trim().split("\n").slice(-3).join(" / ") || "no output"}; is python3-jinja2 installed?`,
    );
  }
}

/** Check templates with Jinja2's parser and the whitelist: every problem with its line and column. */
export async function checkTemplates(files: TemplateCheck[]): Promise<TemplateProblem[]> {
  if (files.length === 0) return [];
  // Parsing dominates on large repos: one process per core beyond a few hundred files.
  const parts = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4, Math.floor(files.length / 200)));
  const size = Math.ceil(files.length / parts);
  const chunks = Array.from({ length: parts }, (_, i) => files.slice(i * size, (i + 1) * size));
  const replies = await Promise.all(
    chunks.map(async (c) => parseReply("check", await runSandbox("check", { files: c }))),
  );
  return replies.flatMap((r) => r.problems as TemplateProblem[]);
}

export interface RenderSpec {
  /** KEY -> the template file and whether it ends with a newline. */
  templates: Record<string, { path: string; nl: boolean }>;
  /** Per seat: which templates (as which content path) and the variables. */
  seats: { seat: number; templates: { key: string; rel: string }[]; vars: Record<string, unknown> }[];
  /** Bundle file written (0600): one line per rendered file, JSON header, tab, base64 content. */
  output: string;
}

export interface RenderProblem extends TemplateProblem {
  /** The template key of the spec. */
  key: string;
  /** Set when only this seat failed (a render-time error); otherwise every seat using `key`. */
  seat?: number;
}

/**
 * Render every seat's templates into the bundle. Seats using a template the check refuses, or whose
 * rendering fails, get nothing in the bundle and come back in `problems` (file:line:col).
 */
export async function renderBundle(spec: RenderSpec): Promise<{ files: number; problems: RenderProblem[] }> {
  const r = await runSandbox("render", spec);
  const reply = parseReply("render", r);
  if (r.code !== 0 || typeof reply.files !== "number") {
    throw new WodError(
      `The template renderer (${PYTHON} ${JINJA_SANDBOX}) failed with exit code ${r.code}: ` +
        `${r.stderr.trim().split("\n").slice(-3).join(" / ") || "no output"}`,
    );
  }
  return { files: reply.files, problems: (reply.problems ?? []) as RenderProblem[] };
}

/** 1-based line and column of a character offset. */
export function offsetToPos(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    last = i;
  }
  return { line, col: offset - last };
}
