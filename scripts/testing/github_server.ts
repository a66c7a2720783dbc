// A local stand-in for api.github.com that checks EVERY request against GitHub's own OpenAPI
// description (npm @octokit/openapi, api.github.com.json): an unknown route, a wrong method, a
// missing/ill-typed parameter or a body not matching the operation's schema gets a 4xx answer and is
// recorded in `violations`. Tests assert `violations` is empty. The routes the project uses are
// implemented in memory: Git Data (refs, commits, trees, blobs), repository contents (read),
// workflow dispatch, issue comments (list/create/get/update), pull requests (list with state/head/base
// filters, create, get, update; the branches may live in a local git repository, see createRepo).
// Faults (409, rate limits with retry-after) can be injected to exercise clients' retry paths.
import { createHash } from "node:crypto";
import { Ajv2020 } from "ajv/dist/2020";
import type { ValidateFunction } from "ajv/dist/2020";
import addFormatsImport from "ajv-formats";
import { serveLoopback } from "./serve.ts";
import { git } from "../common/git.ts";

const addFormats = addFormatsImport as unknown as (ajv: InstanceType<typeof Ajv2020>) => void;

// deno-lint-ignore no-explicit-any
type Json = any;
// deno-lint-ignore no-explicit-any
type Body = any;

export interface Violation {
  method: string;
  path: string;
  status: number;
  message: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  route?: string;
  status: number;
}

export interface Dispatch {
  repo: string;
  workflow: string;
  ref: string;
  inputs: Record<string, unknown>;
}

export interface Comment {
  id: number;
  issue: number;
  body: string;
  created_at: string;
  updated_at: string;
}

export interface PullRequest {
  number: number;
  title: string;
  body: string;
  state: "open" | "closed";
  head: string; // branch name
  base: string; // branch name
  draft: boolean;
  created_at: string;
  updated_at: string;
}

export interface Fault {
  status: number;
  /** Only requests whose "METHOD route" matches (default: any). */
  match?: RegExp;
  /** How many matching requests fail (default 1). */
  count?: number;
  headers?: Record<string, string>;
  message?: string;
}

interface GitObject {
  type: "blob" | "tree" | "commit";
  content?: string; // blob (utf-8)
  entries?: TreeEntry[]; // tree
  commit?: { message: string; tree: string; parents: string[]; date: string };
}

interface TreeEntry {
  path: string;
  mode: string;
  type: "blob" | "tree" | "commit";
  sha: string;
}

interface Repo {
  owner: string;
  name: string;
  defaultBranch: string;
  refs: Map<string, string>; // "heads/main" -> sha
  objects: Map<string, GitObject>;
  comments: Comment[];
  pulls: PullRequest[];
  nextNumber: number; // issues and pull requests share their numbers
  gitDir?: string; // a local git repository holding the branches (pull request heads/bases)
  workflows: Set<string> | undefined; // undefined: any workflow id accepted
}

interface Operation {
  method: string;
  route: string;
  parameters: Json[];
  body?: ValidateFunction;
  bodyRequired: boolean;
  bodyProps?: Set<string>;
}

interface CompiledRoute {
  route: string;
  regex: RegExp;
  names: string[];
  ops: Map<string, Operation>;
}

const SPEC_URL = new URL(
  "../../node_modules/@octokit/openapi/generated/api.github.com.json",
  import.meta.url,
);

let specCache: { routes: CompiledRoute[]; ajv: InstanceType<typeof Ajv2020>; spec: Json } | undefined;

function deref(spec: Json, v: Json): Json {
  let cur = v;
  while (cur && typeof cur === "object" && typeof cur.$ref === "string" && cur.$ref.startsWith("#/")) {
    cur = cur.$ref.slice(2).split("/").reduce((o: Json, k: string) => o?.[k.replace(/~1/g, "/")], spec);
  }
  return cur;
}

function rewriteRefs(v: Json): Json {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === "object") {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === "$ref" && typeof x === "string" && x.startsWith("#/") ? `gh-spec${x}` : rewriteRefs(x);
    }
    return out;
  }
  return v;
}

async function loadSpec() {
  if (specCache) return specCache;
  const spec = JSON.parse(await Deno.readTextFile(SPEC_URL));
  const ajv = new Ajv2020({ strict: false, allErrors: false, logger: false, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema({ $id: "gh-spec", components: spec.components });
  const routes: CompiledRoute[] = [];
  for (const [route, item] of Object.entries<Json>(spec.paths)) {
    const names: string[] = [];
    const shared: Json[] = item.parameters ?? [];
    const multi = new Set<string>();
    for (const op of Object.values<Json>(item)) {
      for (const p of [...shared, ...(op?.parameters ?? [])]) {
        const d = deref(spec, p);
        if (d?.in === "path" && d["x-multi-segment"]) multi.add(d.name);
      }
    }
    const pattern = route.split("/").map((seg) =>
      seg.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{([^}]+)\\?\}/g, (_m, n: string) => {
        names.push(n);
        return multi.has(n) ? "(.+)" : "([^/]+)";
      })
    ).join("/");
    const ops = new Map<string, Operation>();
    for (const [method, op] of Object.entries<Json>(item)) {
      if (method === "parameters" || typeof op !== "object") continue;
      const params = [...shared, ...(op.parameters ?? [])].map((p) => deref(spec, p));
      const rb = deref(spec, op.requestBody);
      const schema = rb?.content?.["application/json"]?.schema;
      const resolved = schema ? deref(spec, schema) : undefined;
      ops.set(method.toUpperCase(), {
        method: method.toUpperCase(),
        route,
        parameters: params,
        bodyRequired: !!rb?.required,
        body: schema ? lazyCompile(ajv, schema) : undefined,
        bodyProps: resolved?.type === "object" && resolved.properties && !resolved.additionalProperties
          ? new Set(Object.keys(resolved.properties))
          : undefined,
      });
    }
    routes.push({ route, regex: new RegExp(`^${pattern}$`), names, ops });
  }
  // Literal routes before templated ones (/repos/{o}/{r}/git/refs vs .../git/refs/{ref}).
  routes.sort((a, b) => a.names.length - b.names.length);
  specCache = { routes, ajv, spec };
  return specCache;
}

function lazyCompile(ajv: InstanceType<typeof Ajv2020>, schema: Json): ValidateFunction {
  let fn: ValidateFunction | undefined;
  const wrapper = ((data: unknown) => {
    fn ??= ajv.compile(rewriteRefs(schema));
    const ok = fn(data);
    wrapper.errors = fn.errors;
    return ok;
  }) as ValidateFunction;
  return wrapper;
}

// ---- OpenAPI checking: route, parameters, body. Each returns the violation (status, message) or the
// checked values.

/** What breaks the description: the status GitHub would answer and why. */
interface Problem {
  status: number;
  message: string;
}

/** The operation for `method` on `path`, with its path parameters (decoded). */
function matchOperation(
  routes: CompiledRoute[],
  method: string,
  path: string,
): Problem | { op: Operation; params: Record<string, string> } {
  let match: { r: CompiledRoute; m: RegExpExecArray } | undefined;
  for (const r of routes) {
    const m = r.regex.exec(path);
    if (m) {
      match = { r, m };
      if (r.ops.has(method)) break;
    }
  }
  if (!match) return { status: 404, message: `no route ${path} in api.github.com's description` };
  const op = match.r.ops.get(method);
  if (!op) {
    return {
      status: 405,
      message: `method ${method} not allowed on ${match.r.route} (allowed: ${
        [...match.r.ops.keys()].join(", ")
      })`,
    };
  }
  const params: Record<string, string> = {};
  match.r.names.forEach((n, i) => params[n] = decodeURIComponent(match.m[i + 1]));
  return { op, params };
}

/** Path and query parameters: presence, integer type, enum; no unknown query parameter. */
function checkParameters(op: Operation, params: Record<string, string>, url: URL): Problem | undefined {
  const known = new Set<string>();
  for (const p of op.parameters) {
    if (p.in === "query") known.add(p.name);
    const value = p.in === "path"
      ? params[p.name]
      : p.in === "query"
      ? url.searchParams.get(p.name)
      : undefined;
    if (p.in !== "path" && p.in !== "query") continue;
    if (value === null || value === undefined) {
      if (p.required) return { status: 400, message: `missing required ${p.in} parameter "${p.name}"` };
      continue;
    }
    const t = p.schema?.type;
    if (t === "integer" && !/^-?\d+$/.test(value)) {
      return { status: 400, message: `${p.in} parameter "${p.name}" must be an integer, got "${value}"` };
    }
    if (p.schema?.enum && !p.schema.enum.includes(value)) {
      return { status: 400, message: `${p.in} parameter "${p.name}" must be one of ${p.schema.enum}` };
    }
  }
  for (const k of url.searchParams.keys()) {
    if (!known.has(k)) return { status: 400, message: `unknown query parameter "${k}" for ${op.route}` };
  }
  return undefined;
}

/** The request body: JSON, valid against the operation's schema, no unknown top-level property. */
function checkBody(op: Operation, method: string, text: string): Problem | { body: Body } {
  if (text.length === 0) {
    return op.bodyRequired
      ? { status: 400, message: `${method} ${op.route} requires a request body` }
      : { body: undefined };
  }
  if (!op.body) return { status: 400, message: `${method} ${op.route} takes no request body` };
  let body: Body;
  try {
    body = JSON.parse(text);
  } catch {
    return { status: 400, message: `request body is not valid JSON` };
  }
  if (!op.body(body)) {
    const e = op.body.errors?.[0];
    return {
      status: 422,
      message: `request body ${e?.instancePath || "(root)"} ${e?.message} (${
        JSON.stringify(e?.params)
      }) for ${method} ${op.route}`,
    };
  }
  if (op.bodyProps && body && typeof body === "object") {
    for (const k of Object.keys(body)) {
      if (!op.bodyProps.has(k)) {
        return { status: 422, message: `unknown request body property "${k}" for ${method} ${op.route}` };
      }
    }
  }
  return { body };
}

function gitSha(type: string, body: string): string {
  const bytes = new TextEncoder().encode(body);
  return createHash("sha1").update(`${type} ${bytes.length}\0`).update(bytes).digest("hex");
}

/** One request to implement: its "METHOD route" key, path parameters, parsed body and URL. */
interface Call {
  key: string;
  method: string;
  /** owner/repo */
  full: string;
  p: Record<string, string>;
  body: Json;
  url: URL;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly violation = false) {
    super(message);
  }
}

export interface GithubServerOptions {
  /** Required token (Authorization: token|Bearer). Default: any token, but one is required. */
  token?: string;
}

export class GithubServer {
  readonly violations: Violation[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly dispatches: Dispatch[] = [];
  readonly repos = new Map<string, Repo>();
  private faults: Fault[] = [];
  private server?: Deno.HttpServer;
  private nextComment = 1;
  url = "";

  constructor(readonly opts: GithubServerOptions = {}) {}

  async start(): Promise<this> {
    await loadSpec();
    ({ server: this.server, url: this.url } = await serveLoopback((req) => this.handle(req)));
    return this;
  }

  async close(): Promise<void> {
    await this.server?.shutdown();
  }

  /**
   * Creates an (empty) repository; `workflows` restricts accepted workflow ids/file names. `gitDir`:
   * a local git repository (e.g. the bare remote a workflow pushes to) whose branches count as this
   * repository's branches for pull requests, next to the in-memory Git Data refs.
   */
  createRepo(
    fullName: string,
    opts: { defaultBranch?: string; workflows?: string[]; gitDir?: string } = {},
  ): void {
    const [owner, name] = fullName.split("/");
    this.repos.set(fullName.toLowerCase(), {
      owner,
      name,
      defaultBranch: opts.defaultBranch ?? "main",
      refs: new Map(),
      objects: new Map(),
      comments: [],
      pulls: [],
      nextNumber: 1,
      gitDir: opts.gitDir,
      workflows: opts.workflows ? new Set(opts.workflows) : undefined,
    });
  }

  /** Queue a fault: the next matching requests get `status` (e.g. 409, or 403/429 with retry-after). */
  inject(fault: Fault): void {
    this.faults.push({ count: 1, ...fault });
  }

  comments(fullName: string): Comment[] {
    return this.repo(fullName).comments;
  }

  pulls(fullName: string): PullRequest[] {
    return this.repo(fullName).pulls;
  }

  /** The files of `branch` (path -> content) as the server holds them. */
  files(fullName: string, branch: string): Map<string, string> {
    const r = this.repo(fullName);
    const out = new Map<string, string>();
    const head = r.refs.get(`heads/${branch}`);
    if (!head) return out;
    const walk = (treeSha: string, prefix: string) => {
      for (const e of r.objects.get(treeSha)!.entries!) {
        if (e.type === "tree") walk(e.sha, `${prefix}${e.path}/`);
        else out.set(`${prefix}${e.path}`, r.objects.get(e.sha)!.content!);
      }
    };
    walk(r.objects.get(head)!.commit!.tree, "");
    return out;
  }

  commitCount(fullName: string, branch: string): number {
    const r = this.repo(fullName);
    let sha = r.refs.get(`heads/${branch}`);
    let n = 0;
    while (sha) {
      n++;
      sha = r.objects.get(sha)!.commit!.parents[0];
    }
    return n;
  }

  private repo(fullName: string): Repo {
    const r = this.repos.get(fullName.toLowerCase());
    if (!r) throw new HttpError(404, `Repository ${fullName} not found`);
    return r;
  }

  private violation(req: Request, path: string, status: number, message: string): Response {
    this.violations.push({ method: req.method, path, status, message });
    return json(status, {
      message: `OpenAPI check: ${message}`,
      documentation_url: "https://docs.github.com/rest",
    });
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const rec: RecordedRequest = { method: req.method, path, status: 0 };
    this.requests.push(rec);
    const res = await this.dispatch(req, url).catch((err) => {
      if (err instanceof HttpError) return json(err.status, { message: err.message });
      return json(500, { message: `Test server error: ${(err as Error).message}` });
    });
    rec.status = res.status;
    return res;
  }

  /** Checks the request against the OpenAPI description and authentication, then implements it. */
  private async dispatch(req: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    const matched = matchOperation((await loadSpec()).routes, req.method, path);
    if ("status" in matched) return this.violation(req, path, matched.status, matched.message);
    const { op, params } = matched;
    const badParam = checkParameters(op, params, url);
    if (badParam) return this.violation(req, path, badParam.status, badParam.message);
    const auth = req.headers.get("authorization");
    if (!auth || !/^(token|bearer) \S+$/i.test(auth)) {
      return json(401, { message: "Requires authentication" });
    }
    if (this.opts.token && auth.split(" ")[1] !== this.opts.token) {
      return json(401, { message: "Bad credentials" });
    }
    const checked = checkBody(op, req.method, await req.text());
    if ("status" in checked) return this.violation(req, path, checked.status, checked.message);
    const key = `${req.method} ${op.route}`;
    const fault = this.faults.find((f) => (f.match ? f.match.test(key) : true) && (f.count ?? 1) > 0);
    if (fault) {
      fault.count = (fault.count ?? 1) - 1;
      if (fault.count <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      return json(fault.status, { message: fault.message ?? `Injected ${fault.status}` }, fault.headers);
    }
    return this.implement(op.route, req.method, params, checked.body, url);
  }

  /** The in-memory implementation of an operation the OpenAPI check let through, by route group. */
  private async implement(
    route: string,
    method: string,
    p: Record<string, string>,
    body: Json,
    url: URL,
  ): Promise<Response> {
    const call: Call = { key: `${method} ${route}`, method, full: `${p.owner}/${p.repo}`, p, body, url };
    const res = this.refRoutes(call) ?? this.objectRoutes(call) ?? this.actionRoutes(call) ??
      this.commentRoutes(call) ?? await this.pullRoutes(call);
    if (res) return res;
    return json(501, { message: `Test server: ${call.key} is valid but not implemented here` });
  }

  /** Repository and Git Data references: read, list by prefix, create, move (fast-forward unless forced). */
  private refRoutes({ key, full, p, body }: Call): Response | undefined {
    switch (key) {
      case "GET /repos/{owner}/{repo}": {
        const r = this.repo(full);
        return json(200, {
          name: r.name,
          full_name: `${r.owner}/${r.name}`,
          default_branch: r.defaultBranch,
        });
      }
      case "GET /repos/{owner}/{repo}/git/ref/{ref}": {
        const r = this.repo(full);
        const sha = r.refs.get(p.ref);
        if (!sha) return json(404, { message: "Not Found" });
        return json(200, refJson(full, p.ref, sha));
      }
      case "GET /repos/{owner}/{repo}/git/matching-refs/{ref}": {
        const r = this.repo(full);
        return json(
          200,
          [...r.refs].filter(([k]) => k.startsWith(p.ref)).map(([k, s]) => refJson(full, k, s)),
        );
      }
      case "POST /repos/{owner}/{repo}/git/refs": {
        const r = this.repo(full);
        if (!/^refs\/[^/]+\/.+/.test(body.ref)) {
          return json(422, { message: "Reference name must start with refs/" });
        }
        const name = body.ref.slice(5);
        if (r.refs.has(name)) return json(422, { message: "Reference already exists" });
        if (r.objects.get(body.sha)?.type !== "commit") {
          return json(422, { message: "Object does not exist" });
        }
        r.refs.set(name, body.sha);
        return json(201, refJson(full, name, body.sha));
      }
      case "PATCH /repos/{owner}/{repo}/git/refs/{ref}": {
        const r = this.repo(full);
        const cur = r.refs.get(p.ref);
        if (!cur) return json(422, { message: "Reference does not exist" });
        if (r.objects.get(body.sha)?.type !== "commit") {
          return json(422, { message: "Object does not exist" });
        }
        if (!body.force && !this.isAncestor(r, cur, body.sha)) {
          return json(422, { message: "Update is not a fast forward" });
        }
        r.refs.set(p.ref, body.sha);
        return json(200, refJson(full, p.ref, body.sha));
      }
      default:
        return undefined;
    }
  }

  /** Git Data objects: commits, blobs and trees, read and created in memory. */
  private objectRoutes({ key, full, p, body, url }: Call): Response | undefined {
    switch (key) {
      case "GET /repos/{owner}/{repo}/git/commits/{commit_sha}": {
        const r = this.repo(full);
        const o = r.objects.get(p.commit_sha);
        if (o?.type !== "commit") return json(404, { message: "Not Found" });
        return json(200, commitJson(p.commit_sha, o));
      }
      case "POST /repos/{owner}/{repo}/git/commits": {
        const r = this.repo(full);
        if (r.objects.get(body.tree)?.type !== "tree") {
          return json(422, { message: "Tree SHA does not exist" });
        }
        for (const parent of body.parents ?? []) {
          if (r.objects.get(parent)?.type !== "commit") {
            return json(422, { message: "Parent SHA does not exist" });
          }
        }
        const commit = {
          message: body.message,
          tree: body.tree,
          parents: body.parents ?? [],
          date: new Date().toISOString(),
        };
        const sha = gitSha("commit", JSON.stringify(commit) + Math.random());
        const o: GitObject = { type: "commit", commit };
        r.objects.set(sha, o);
        return json(201, commitJson(sha, o));
      }
      case "POST /repos/{owner}/{repo}/git/blobs": {
        const r = this.repo(full);
        const content = body.encoding === "base64"
          ? new TextDecoder().decode(Uint8Array.from(atob(body.content), (c) => c.charCodeAt(0)))
          : body.content;
        const sha = gitSha("blob", content);
        r.objects.set(sha, { type: "blob", content });
        return json(201, { sha, url: `${this.url}/repos/${full}/git/blobs/${sha}` });
      }
      case "GET /repos/{owner}/{repo}/git/blobs/{file_sha}": {
        const r = this.repo(full);
        const o = r.objects.get(p.file_sha);
        if (o?.type !== "blob") return json(404, { message: "Not Found" });
        const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(o.content!)));
        return json(200, {
          sha: p.file_sha,
          size: o.content!.length,
          content: b64,
          encoding: "base64",
          node_id: "B",
        });
      }
      case "POST /repos/{owner}/{repo}/git/trees":
        return this.createTree(this.repo(full), body);
      case "GET /repos/{owner}/{repo}/git/trees/{tree_sha}": {
        const r = this.repo(full);
        let sha = p.tree_sha;
        if (r.objects.get(sha)?.type === "commit") sha = r.objects.get(sha)!.commit!.tree;
        const o = r.objects.get(sha);
        if (o?.type !== "tree") return json(404, { message: "Not Found" });
        const recursive = url.searchParams.has("recursive");
        const tree: Json[] = [];
        const walk = (t: GitObject, prefix: string) => {
          for (const e of t.entries!) {
            tree.push({ path: prefix + e.path, mode: e.mode, type: e.type, sha: e.sha });
            if (recursive && e.type === "tree") walk(r.objects.get(e.sha)!, `${prefix}${e.path}/`);
          }
        };
        walk(o, "");
        return json(200, { sha, url: `${this.url}/repos/${full}/git/trees/${sha}`, tree, truncated: false });
      }
      default:
        return undefined;
    }
  }

  /** Actions: workflow_dispatch (recorded in `dispatches`). */
  private actionRoutes({ key, full, p, body }: Call): Response | undefined {
    switch (key) {
      case "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": {
        const r = this.repo(full);
        if (r.workflows && !r.workflows.has(p.workflow_id)) return json(404, { message: "Not Found" });
        this.dispatches.push({
          repo: full,
          workflow: p.workflow_id,
          ref: body.ref,
          inputs: body.inputs ?? {},
        });
        return new Response(null, { status: 204 });
      }
      default:
        return undefined;
    }
  }

  /** Issue comments: list (paginated), create, read, update. */
  private commentRoutes({ key, full, p, body, url, method }: Call): Response | undefined {
    switch (key) {
      case "GET /repos/{owner}/{repo}/issues/{issue_number}/comments": {
        const r = this.repo(full);
        const n = Number(p.issue_number);
        const per = Number(url.searchParams.get("per_page") ?? 30);
        const page = Number(url.searchParams.get("page") ?? 1);
        const all = r.comments.filter((c) => c.issue === n);
        return json(200, all.slice((page - 1) * per, page * per).map((c) => commentJson(this.url, full, c)));
      }
      case "POST /repos/{owner}/{repo}/issues/{issue_number}/comments": {
        const r = this.repo(full);
        const now = new Date().toISOString();
        const c = {
          id: this.nextComment++,
          issue: Number(p.issue_number),
          body: body.body,
          created_at: now,
          updated_at: now,
        };
        r.comments.push(c);
        return json(201, commentJson(this.url, full, c));
      }
      case "GET /repos/{owner}/{repo}/issues/comments/{comment_id}":
      case "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}": {
        const r = this.repo(full);
        const c = r.comments.find((x) => x.id === Number(p.comment_id));
        if (!c) return json(404, { message: "Not Found" });
        if (method === "PATCH") {
          c.body = body.body;
          c.updated_at = new Date().toISOString();
        }
        return json(200, commentJson(this.url, full, c));
      }
      default:
        return undefined;
    }
  }

  /** Pull requests: list (state/head/base filters, paginated), create, read, update. */
  private async pullRoutes({ key, full, p, body, url, method }: Call): Promise<Response | undefined> {
    switch (key) {
      case "GET /repos/{owner}/{repo}/pulls": {
        const r = this.repo(full);
        const state = url.searchParams.get("state") ?? "open";
        const head = url.searchParams.get("head");
        const base = url.searchParams.get("base");
        const per = Number(url.searchParams.get("per_page") ?? 30);
        const page = Number(url.searchParams.get("page") ?? 1);
        // GitHub's head filter is "user:ref-name" (or "organization:ref-name").
        const headMatch = (pr: PullRequest) => {
          if (head === null) return true;
          const i = head.indexOf(":");
          if (i < 0) return pr.head === head;
          return head.slice(0, i).toLowerCase() === r.owner.toLowerCase() && pr.head === head.slice(i + 1);
        };
        const all = r.pulls.filter((pr) =>
          (state === "all" || pr.state === state) && headMatch(pr) && (base === null || pr.base === base)
        ).sort((a, b) => b.number - a.number);
        const out: Json[] = [];
        for (const pr of all.slice((page - 1) * per, page * per)) out.push(await this.pullJson(r, pr));
        return json(200, out);
      }
      case "POST /repos/{owner}/{repo}/pulls": {
        const r = this.repo(full);
        const head = String(body.head).includes(":") ? String(body.head).split(":")[1] : String(body.head);
        const [headSha, baseSha] = [await this.branchSha(r, head), await this.branchSha(r, body.base)];
        if (!headSha || !baseSha) {
          return json(422, {
            message: "Validation Failed",
            errors: [{ resource: "PullRequest", field: headSha ? "base" : "head", code: "invalid" }],
          });
        }
        if (r.pulls.some((x) => x.state === "open" && x.head === head && x.base === body.base)) {
          return json(422, {
            message: "Validation Failed",
            errors: [{
              resource: "PullRequest",
              code: "custom",
              message: `A pull request already exists for ${r.owner}:${head}.`,
            }],
          });
        }
        if (await this.contains(r, baseSha, headSha)) {
          return json(422, {
            message: "Validation Failed",
            errors: [{
              resource: "PullRequest",
              code: "custom",
              message: `No commits between ${body.base} and ${head}`,
            }],
          });
        }
        const now = new Date().toISOString();
        const pr: PullRequest = {
          number: r.nextNumber++,
          title: body.title ?? "",
          body: body.body ?? "",
          state: "open",
          head,
          base: body.base,
          draft: !!body.draft,
          created_at: now,
          updated_at: now,
        };
        r.pulls.push(pr);
        return json(201, await this.pullJson(r, pr));
      }
      case "GET /repos/{owner}/{repo}/pulls/{pull_number}":
      case "PATCH /repos/{owner}/{repo}/pulls/{pull_number}": {
        const r = this.repo(full);
        const pr = r.pulls.find((x) => x.number === Number(p.pull_number));
        if (!pr) return json(404, { message: "Not Found" });
        if (method === "PATCH") {
          if (body.base !== undefined && !(await this.branchSha(r, body.base))) {
            return json(422, {
              message: "Validation Failed",
              errors: [{ resource: "PullRequest", field: "base", code: "invalid" }],
            });
          }
          if (body.title !== undefined) pr.title = body.title;
          if (body.body !== undefined) pr.body = body.body;
          if (body.state !== undefined) pr.state = body.state;
          if (body.base !== undefined) pr.base = body.base;
          pr.updated_at = new Date().toISOString();
        }
        return json(200, await this.pullJson(r, pr));
      }
      default:
        return undefined;
    }
  }

  /** The commit `branch` points at: in-memory refs first, then the repository's `gitDir`. */
  private async branchSha(r: Repo, branch: string): Promise<string | undefined> {
    const mem = r.refs.get(`heads/${branch}`);
    if (mem || !r.gitDir) return mem;
    const out = await git([
      "-C",
      r.gitDir,
      "rev-parse",
      "--verify",
      "--quiet",
      `refs/heads/${branch}^{commit}`,
    ], {
      allowFailure: true,
    });
    return out.code === 0 ? out.stdout.trim() : undefined;
  }

  /** Whether commit `sha` is already in `base`'s history (no commits to merge). */
  private async contains(r: Repo, base: string, sha: string): Promise<boolean> {
    if (r.objects.has(base) || r.objects.has(sha) || !r.gitDir) return this.isAncestor(r, sha, base);
    const out = await git(["-C", r.gitDir, "merge-base", "--is-ancestor", sha, base], {
      allowFailure: true,
    });
    return out.code === 0;
  }

  private async pullJson(r: Repo, pr: PullRequest): Promise<Json> {
    const full = `${r.owner}/${r.name}`;
    const api = `${this.url}/repos/${full}`;
    const html = `https://github.com/${full}/pull/${pr.number}`;
    const branch = async (ref: string) => ({
      label: `${r.owner}:${ref}`,
      ref,
      sha: (await this.branchSha(r, ref)) ?? "",
      user: { login: r.owner, id: 2, type: "Organization" },
      repo: { name: r.name, full_name: full, default_branch: r.defaultBranch },
    });
    return {
      url: `${api}/pulls/${pr.number}`,
      id: 1000 + pr.number,
      node_id: "PR",
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${pr.number}`,
      commits_url: `${api}/pulls/${pr.number}/commits`,
      review_comments_url: `${api}/pulls/${pr.number}/comments`,
      review_comment_url: `${api}/pulls/comments{/number}`,
      comments_url: `${api}/issues/${pr.number}/comments`,
      statuses_url: `${api}/statuses/${pr.number}`,
      number: pr.number,
      state: pr.state,
      locked: false,
      title: pr.title,
      user: { login: "wod-bot", id: 1, type: "Bot" },
      body: pr.body,
      labels: [],
      milestone: null,
      created_at: pr.created_at,
      updated_at: pr.updated_at,
      closed_at: pr.state === "closed" ? pr.updated_at : null,
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      draft: pr.draft,
      head: await branch(pr.head),
      base: await branch(pr.base),
      _links: {},
      author_association: "NONE",
      auto_merge: null,
      merged: false,
      maintainer_can_modify: false,
    };
  }

  private isAncestor(r: Repo, ancestor: string, sha: string): boolean {
    const seen = new Set<string>();
    const stack = [sha];
    while (stack.length) {
      const s = stack.pop()!;
      if (s === ancestor) return true;
      if (seen.has(s)) continue;
      seen.add(s);
      stack.push(...(r.objects.get(s)?.commit?.parents ?? []));
    }
    return false;
  }

  private createTree(r: Repo, body: Json): Response {
    // Flatten base tree to full paths, apply the entries, rebuild nested trees.
    const flat = new Map<string, { mode: string; type: "blob" | "tree" | "commit"; sha: string }>();
    if (body.base_tree) {
      const base = r.objects.get(body.base_tree);
      if (base?.type !== "tree") return json(422, { message: "base_tree is not a valid tree oid" });
      const walk = (t: GitObject, prefix: string) => {
        for (const e of t.entries!) {
          if (e.type === "tree") walk(r.objects.get(e.sha)!, `${prefix}${e.path}/`);
          else flat.set(prefix + e.path, { mode: e.mode, type: e.type, sha: e.sha });
        }
      };
      walk(base, "");
    }
    for (const e of body.tree as Json[]) {
      if (e.type === "tree") {
        return json(422, { message: "Test server: tree entries of type tree not supported" });
      }
      if (e.sha === null) {
        flat.delete(e.path);
        continue;
      }
      let sha = e.sha;
      if (e.content !== undefined) {
        sha = gitSha("blob", e.content);
        r.objects.set(sha, { type: "blob", content: e.content });
      } else if (r.objects.get(sha)?.type !== "blob") {
        return json(422, { message: `Invalid tree info: blob ${sha} does not exist` });
      }
      flat.set(e.path, { mode: e.mode, type: "blob", sha });
    }
    const build = (prefix: string): string => {
      const entries: TreeEntry[] = [];
      const subdirs = new Set<string>();
      for (const [path, v] of flat) {
        if (!path.startsWith(prefix)) continue;
        const rest = path.slice(prefix.length);
        const i = rest.indexOf("/");
        if (i < 0) entries.push({ path: rest, ...v });
        else subdirs.add(rest.slice(0, i));
      }
      for (const d of subdirs) {
        entries.push({ path: d, mode: "040000", type: "tree", sha: build(`${prefix}${d}/`) });
      }
      entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      const sha = gitSha("tree", JSON.stringify(entries));
      r.objects.set(sha, { type: "tree", entries });
      return sha;
    };
    const sha = build("");
    const o = r.objects.get(sha)!;
    return json(201, {
      sha,
      url: `${this.url}/repos/${r.owner}/${r.name}/git/trees/${sha}`,
      tree: o.entries,
      truncated: false,
    });
  }
}

function refJson(full: string, name: string, sha: string): Json {
  return {
    ref: `refs/${name}`,
    node_id: "R",
    url: `https://api.github.com/repos/${full}/git/refs/${name}`,
    object: { type: "commit", sha, url: `https://api.github.com/repos/${full}/git/commits/${sha}` },
  };
}

function commitJson(sha: string, o: GitObject): Json {
  const c = o.commit!;
  const who = { name: "wod", email: "wod@localhost", date: c.date };
  return {
    sha,
    node_id: "C",
    message: c.message,
    tree: { sha: c.tree, url: "" },
    parents: c.parents.map((p) => ({ sha: p, url: "", html_url: "" })),
    author: who,
    committer: who,
    url: "",
    html_url: "",
    verification: { verified: false, reason: "unsigned", signature: null, payload: null, verified_at: null },
  };
}

function commentJson(base: string, full: string, c: Comment): Json {
  return {
    id: c.id,
    node_id: "IC",
    url: `${base}/repos/${full}/issues/comments/${c.id}`,
    html_url: "",
    issue_url: `${base}/repos/${full}/issues/${c.issue}`,
    body: c.body,
    user: { login: "wod-bot", id: 1, type: "Bot" },
    created_at: c.created_at,
    updated_at: c.updated_at,
    author_association: "NONE",
  };
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** Starts a server on 127.0.0.1 (random port). Close it with `await server.close()`. */
export async function startGithubServer(opts: GithubServerOptions = {}): Promise<GithubServer> {
  return await new GithubServer(opts).start();
}
