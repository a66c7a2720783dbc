// Seat actions on a backend: CREATE, CLEANUP, RESET, PURGE for a list of seats in ONE ansible-playbook
// run (ansible/seats.yml). New passwords come from the CSPRNG here, travel only in the runner's
// extra-vars file (0600, deleted after) and come back only in the typed results.
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { Buffer } from "node:buffer";
import { WodError } from "../common/errors.ts";
import { exec } from "../common/exec.ts";
import { redactText } from "../common/log.ts";
import {
  type Config,
  findBackend,
  loadConfig,
  requireEnvironment,
  type WorkshopEntry,
} from "../config/load.ts";
import type { EnvironmentBackend, Order } from "../config/types.gen.ts";
import {
  BRANDING_VARS,
  contentFiles,
  isTemplateText,
  renderBundle,
  type RenderProblem,
  type RenderSpec,
} from "../config/template.ts";
import { failureReason, type PlaybookRun, runPlaybook } from "./ansible.ts";
import { type BackendConnection, connectionFor } from "../config/connection.ts";

/** The order actions (schemas/order.schema.json; the list is ACTIONS of scripts/orders/order.ts). */
export type SeatAction = Order["action"];

export interface SeatTask {
  action: SeatAction;
  workshop: string;
  seat: number;
  mode?: "WKSHP" | "CHLG";
  /**
   * The order id. The backend remembers the id of the CREATE it applied: the same CREATE again (its
   * outcome was never recorded, e.g. a crash after the credentials went out) keeps the home and only
   * sets a new password.
   */
  order?: string;
}

export interface SeatResult {
  seat: number;
  action: SeatAction;
  workshop: string;
  ok: boolean;
  /** New password (every action), never logged. */
  password?: string;
  /** 0-100, CLEANUP. */
  completion?: number;
  /** Seat status after the action: active, free or held-for-reset. */
  status?: string;
  /** Reason when !ok (no secrets). */
  error?: string;
  /** A CREATE of an order already applied on the backend: the home was kept, the password is new. */
  replayed?: boolean;
  /**
   * The run failed before any seat result came back (unreachable host, playbook error): the seat
   * may or may not have been touched; nothing about the seat itself is known to be wrong.
   */
  hostFailure?: boolean;
}

export { type BackendConnection, connectionFor } from "../config/connection.ts";

/** Connection details of any backend (the connection provider, scripts/config/connection.ts). */
export async function backendConnection(
  root: string,
  envName: string,
  backendName: string,
  privateDir?: string,
): Promise<BackendConnection> {
  const cfg = await loadConfig(root, { privateDir });
  return connectionFor(findBackend(requireEnvironment(cfg, envName), backendName), envName);
}

// No look-alike characters (0/O/o, 1/l/I/i).
const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
export const PASSWORD_LENGTH = 16;

/** A new password from the CSPRNG (rejection sampling: no modulo bias). */
export function newPassword(length = PASSWORD_LENGTH): string {
  const out: string[] = [];
  const limit = 256 - (256 % ALPHABET.length);
  while (out.length < length) {
    for (const b of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (b < limit && out.length < length) out.push(ALPHABET[b % ALPHABET.length]);
    }
  }
  return out.join("");
}

/**
 * Archives of content up to this size travel base64-encoded in the run's variables (one remote
 * command unpacks them); larger ones are uploaded by Ansible's unarchive (three remote steps).
 */
export const INLINE_ARCHIVE_MAX = 1024 * 1024;

/** Where a run is staged on the backend (removed at the end of the run). */
const STAGING_ROOT = "/var/lib/wod/run";

const HOOKS: Record<SeatAction, string[]> = {
  CREATE: ["create", "post-copy"],
  CLEANUP: ["cleanup"],
  RESET: ["reset"],
  PURGE: ["purge"],
};

interface ContentFile {
  path: string;
  nl: boolean;
}

interface Prepared {
  textFiles: ContentFile[];
}

/** Stage a workshop: text files listed for rendering, the rest copied into the archive tree. */
async function prepareWorkshop(w: WorkshopEntry, archiveDir: string): Promise<Prepared> {
  const textFiles: ContentFile[] = [];
  for (const p of await contentFiles(w.dir)) {
    const data = await Deno.readFile(join(w.dir, p));
    if (isTemplateText(data)) {
      textFiles.push({ path: p, nl: data.length > 0 && data[data.length - 1] === 10 });
    } else {
      const dest = join(archiveDir, "content", w.id, p);
      await Deno.mkdir(dirname(dest), { recursive: true });
      await Deno.writeFile(dest, data);
    }
  }
  return { textFiles };
}

/** Hook scripts of a workshop for one stage: public layer first, then the private one. */
async function stageHooks(
  w: WorkshopEntry,
  stage: string,
  archiveDir: string,
  privateDir?: string,
): Promise<string[]> {
  const layers: { layer: string; dir: string }[] = [];
  const publicDir = w.layer === "public" ? w.dir : w.overridden?.dir;
  if (publicDir) layers.push({ layer: "public", dir: publicDir });
  const privDir = w.layer === "private"
    ? w.dir
    : privateDir
    ? join(privateDir, "workshops", w.id)
    : undefined;
  if (privDir && privDir !== publicDir) layers.push({ layer: "private", dir: privDir });
  const out: string[] = [];
  for (const { layer, dir } of layers) {
    const declared = (w.value.hooks as Record<string, string> | undefined)?.[stage];
    const candidates = [declared, `hooks/${stage}`].filter((x): x is string => !!x);
    const file = candidates.map((c) => join(dir, c)).find((p) => existsSync(p));
    if (!file) continue;
    const rel = join("hooks", w.id, layer, stage);
    await Deno.mkdir(join(archiveDir, dirname(rel)), { recursive: true });
    await Deno.copyFile(file, join(archiveDir, rel));
    await Deno.chmod(join(archiveDir, rel), 0o755);
    out.push(rel);
  }
  return out;
}

export interface RunSeatOptions {
  /** The loaded configuration (the caller's: nothing here reloads it). */
  config: Config;
  privateDir?: string;
  env: string;
  backend: string;
  tasks: SeatTask[];
  log?: (line: string) => void;
  /** Start hub servers of created seats (default true). */
  startServers?: boolean;
  /** Seconds one seat action may take on the backend (default: the role's, 300). */
  seatTimeout?: number;
  /** Seconds the backend run may take (default: the role's, 1200); ansible-playbook is stopped 2 min later. */
  runTimeout?: number;
  /**
   * The backend's install record was just found current (requireCurrentInstall): its seat script is
   * this repository's, so the run does not copy it again. Default false: the run copies it.
   */
  seatToolCurrent?: boolean;
  /** Archives up to this many bytes travel in the run's variables (default INLINE_ARCHIVE_MAX). */
  inlineArchiveMax?: number;
}

/** One seat task as the seats.yml role reads it (`wod_seats_tasks`). */
interface PlaybookTask {
  index: number;
  seat: number;
  action: SeatAction;
  workshop: string;
  mode: string;
  reset: boolean;
  hooks: Record<string, string[]>;
  order?: string;
}

/**
 * ONE ansible-playbook run for all tasks of that backend. Results are in task order. The tasks come from
 * validated orders (scripts/orders/validate.ts) or from callers that chose their seats in the
 * configuration (`wod seats` checks its seats with the same rule): they are not checked again here.
 */
export async function runSeatTasks(opts: RunSeatOptions): Promise<SeatResult[]> {
  const cfg = opts.config;
  const env = requireEnvironment(cfg, opts.env);
  const backend = findBackend(env, opts.backend);
  for (const t of opts.tasks) {
    if (!cfg.workshops.has(t.workshop)) {
      throw new WodError(`Unknown workshop "${t.workshop}": no workshops/${t.workshop}/workshop.yaml`);
    }
  }
  if (opts.tasks.length === 0) return [];
  const conn = connectionFor(backend, opts.env);
  const passwords = opts.tasks.map(() => newPassword());
  const work = await Deno.makeTempDir({ prefix: "wod-seats-" });
  await Deno.chmod(work, 0o700);
  try {
    const archiveDir = join(work, "archive");
    await Deno.mkdir(archiveDir, { recursive: true });
    const runId = `${Date.now()}-${crypto.randomUUID().slice(0, 8)}`;
    const { workshops, templateVars } = await stageContent(cfg, env.value.vars, opts.tasks, archiveDir);
    const tasks = await playbookTasks(cfg, opts, archiveDir, runId);
    const render = renderSpec(cfg, { workshops, templateVars, conn, backend, tasks, passwords, archiveDir });
    // A CREATE whose content is refused (or fails to render) fails alone, before anything is done
    // for it on the backend; every other task of the run goes on.
    const refused = await refusedContent(render, tasks, passwords);
    const runTasks = tasks.filter((t) => !refused.has(t.index));
    const results: (SeatResult | undefined)[] = opts.tasks.map((t, i) =>
      refused.has(i)
        ? { seat: t.seat, action: t.action, workshop: t.workshop, ok: false, error: refused.get(i)! }
        : undefined
    );
    if (runTasks.length === 0) return results as SeatResult[];
    let archive = "";
    let inline = "";
    if ([...Deno.readDirSync(archiveDir)].length > 0) {
      archive = join(work, "stage.tar");
      await exec("tar", ["-C", archiveDir, "--owner=0", "--group=0", "--numeric-owner", "-cf", archive, "."]);
      // Small: in the (0600, deleted) extra-vars file, unpacked by one remote command (no upload).
      if ((await Deno.stat(archive)).size <= (opts.inlineArchiveMax ?? INLINE_ARCHIVE_MAX)) {
        inline = Buffer.from(await Deno.readFile(archive)).toString("base64");
        archive = "";
      }
    }
    const laps = taskLaps();
    const run = await runPlaybook({
      playbook: "seats.yml",
      hosts: [{
        name: backend.name,
        host: conn.host,
        port: conn.port,
        user: conn.user,
        keyFile: conn.keyFile,
        knownHostsFile: conn.knownHostsFile,
      }],
      extraVars: {
        wod_seats_run_id: runId,
        wod_seats_staging_root: STAGING_ROOT,
        wod_seats_tasks: runTasks,
        wod_seats_passwords: passwords,
        wod_seats_archive: archive,
        wod_seats_archive_inline: inline,
        wod_seats_start_servers: opts.startServers ?? true,
        wod_seats_install_tool: opts.seatToolCurrent !== true,
        ...(opts.seatTimeout ? { wod_seats_seat_timeout: opts.seatTimeout } : {}),
        ...(opts.runTimeout ? { wod_seats_run_timeout: opts.runTimeout } : {}),
      },
      redact: passwords,
      log: opts.log,
      onLine: laps.line,
      timeoutSeconds: (opts.runTimeout ?? 1200) + 120,
    });
    opts.log?.(`seats.yml ${backend.name}: controller seconds ${JSON.stringify(laps.done())}`);
    return seatResults(run, { opts, backend, runTasks, passwords, results });
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Where the seconds of a playbook run go, seen from the controller: "startup" until the first task
 * starts (ansible-playbook's own start, inventory and play), each task from its start to its result,
 * "end" from the last result to the exit. Only task names and times: no result is kept.
 */
export function taskLaps(now = () => performance.now()) {
  const t0 = now();
  let last = t0;
  const out: Record<string, number> = {};
  const add = (name: string, t: number) => {
    out[name] = Math.round(((out[name] ?? 0) + (t - last) / 1000) * 100) / 100;
    last = t;
  };
  return {
    line(l: string) {
      if (!l.startsWith("{")) return;
      let ev: { event?: string; task?: string };
      try {
        ev = JSON.parse(l);
      } catch {
        return;
      }
      const t = now();
      if (ev.event === "task_start") add(Object.keys(out).length === 0 ? "startup" : "between", t);
      else if (ev.event === "task" && ev.task) add(ev.task, t);
    },
    done(): Record<string, number> {
      add("end", now());
      return out;
    },
  };
}

/** The content of created seats' workshops, staged in `archiveDir`, and the template variables. */
async function stageContent(
  cfg: Config,
  envVars: Record<string, unknown> | undefined,
  seatTasks: SeatTask[],
  archiveDir: string,
) {
  const workshops: Record<string, { text_files: ContentFile[] }> = {};
  const templateVars: Record<string, unknown> = {};
  const varSource: Record<string, string> = {};
  const addVars = (vars: Record<string, unknown> | undefined, from: string) => {
    for (const [k, v] of Object.entries(vars ?? {})) {
      if (/^(wod_|ansible_)/.test(k)) {
        throw new WodError(`Template variable ${k} of ${from} uses a reserved prefix (wod_, ansible_)`);
      }
      if (k in varSource && varSource[k] !== "the environment" && templateVars[k] !== v) {
        throw new WodError(
          `Workshops ${varSource[k]} and ${from} set template variable ${k} differently: run them separately`,
        );
      }
      templateVars[k] = v;
      varSource[k] = from;
    }
  };
  addVars(envVars, "the environment");
  // Content is staged only for the workshops of created seats.
  for (const id of new Set(seatTasks.filter((t) => t.action === "CREATE").map((t) => t.workshop))) {
    const w = cfg.workshops.get(id)!;
    workshops[id] = { text_files: (await prepareWorkshop(w, archiveDir)).textFiles };
    addVars(w.value.vars, id);
  }
  return { workshops, templateVars };
}

/** The tasks of the run, each with the hooks of its stage staged once per workshop. */
async function playbookTasks(
  cfg: Config,
  opts: RunSeatOptions,
  archiveDir: string,
  runId: string,
): Promise<PlaybookTask[]> {
  const staged = new Map<string, string[]>();
  const tasks: PlaybookTask[] = [];
  for (const [index, t] of opts.tasks.entries()) {
    const w = cfg.workshops.get(t.workshop)!;
    const hooks: Record<string, string[]> = {};
    for (const stage of HOOKS[t.action]) {
      const key = `${t.workshop}/${stage}`;
      if (!staged.has(key)) {
        const files = await stageHooks(w, stage, archiveDir, opts.privateDir);
        staged.set(key, files.map((p) => `${STAGING_ROOT}/${runId}/${p}`));
      }
      if (staged.get(key)!.length) hooks[stage] = staged.get(key)!;
    }
    tasks.push({
      index,
      seat: t.seat,
      action: t.action,
      workshop: t.workshop,
      mode: t.mode ?? "WKSHP",
      reset: w.value.reset === true,
      hooks,
      ...(t.order ? { order: t.order } : {}),
    });
  }
  return tasks;
}

/**
 * What jinja_sandbox.py renders: each created seat's text files with its variables. Content is
 * rendered here (sandboxed, only these variables, empty environment), never by Ansible's template
 * module, so no Ansible lookup can run. The bundle travels in the archive and wod-seat reads it from the
 * staging folder.
 */
function renderSpec(cfg: Config, r: {
  workshops: Record<string, { text_files: ContentFile[] }>;
  templateVars: Record<string, unknown>;
  conn: BackendConnection;
  backend: EnvironmentBackend;
  tasks: PlaybookTask[];
  passwords: string[];
  archiveDir: string;
}): RenderSpec {
  const { workshops, templateVars, conn, backend, tasks, passwords, archiveDir } = r;
  const hubPort = new URL(conn.hubUrl).port;
  const render: RenderSpec = { templates: {}, seats: [], output: join(archiveDir, "bundle.jsonl") };
  for (const [id, ws] of Object.entries(workshops)) {
    for (const f of ws.text_files) {
      render.templates[`${id}/${f.path}`] = { path: join(cfg.workshops.get(id)!.dir, f.path), nl: f.nl };
    }
  }
  const platform = {
    ...Object.fromEntries(BRANDING_VARS.map((k) => [k, ""])),
    ...templateVars,
    WODBEEXTFQDN: conn.fqdn,
    HTTPPORT: hubPort || (conn.hubUrl.startsWith("https") ? "443" : "80"),
    inventory_hostname: backend.name,
    hostvars: { [backend.name]: templateVars },
  };
  for (const t of tasks) {
    if (t.action !== "CREATE") continue;
    render.seats.push({
      seat: t.seat,
      templates: workshops[t.workshop].text_files.map((f) => ({
        key: `${t.workshop}/${f.path}`,
        rel: f.path,
      })),
      vars: {
        ...platform,
        STDID: t.seat,
        PASSSTU: passwords[t.index],
        MODEWS: t.mode,
        WKSHP: t.workshop,
        WORKSHOP: t.workshop,
      },
    });
  }
  return render;
}

/** Task index -> why its content was refused (a template that does not render), passwords redacted. */
async function refusedContent(
  render: RenderSpec,
  tasks: PlaybookTask[],
  passwords: string[],
): Promise<Map<number, string>> {
  const refused = new Map<number, string>();
  if (render.seats.length) {
    let problems: RenderProblem[];
    try {
      problems = (await renderBundle(render)).problems;
    } catch (e) {
      const reason = redactText(e instanceof Error ? e.message : String(e), passwords);
      problems = Object.keys(render.templates).map((key) => ({
        key,
        path: key,
        line: 1,
        col: 1,
        message: reason,
      }));
    }
    for (const p of problems) {
      const workshop = p.key.slice(0, p.key.indexOf("/"));
      const reason = redactText(
        `Content of ${workshop} refused (run \`wod validate\`): ${p.key}:${p.line}:${p.col}: ${p.message}`,
        passwords,
      );
      for (const t of tasks) {
        if (t.action !== "CREATE" || t.workshop !== workshop || refused.has(t.index)) continue;
        if (p.seat === undefined || p.seat === t.seat) refused.set(t.index, reason);
      }
    }
  }
  return refused;
}

/** The seat results the backend reported, merged with the refused ones (in task order). */
function seatResults(run: PlaybookRun, r: {
  opts: RunSeatOptions;
  backend: EnvironmentBackend;
  runTasks: PlaybookTask[];
  passwords: string[];
  results: (SeatResult | undefined)[];
}): SeatResult[] {
  const { opts, backend, runTasks, passwords, results } = r;
  const reported = run.tasks.find((t) => t.task.endsWith("Report seat results") && !t.failed);
  const facts = reported?.result.ansible_facts as
    | { wod_seats_results?: Omit<SeatResult, "password">[]; wod_seats_timings?: Record<string, number> }
    | undefined;
  if (facts?.wod_seats_timings && opts.log) {
    opts.log(`seats.yml ${backend.name}: backend seconds ${JSON.stringify(facts.wod_seats_timings)}`);
  }
  const rows = facts?.wod_seats_results;
  // The seat results count as soon as the backend reported them, even when a later task failed
  // (e.g. removing the staging folder): those seats were changed and have new passwords.
  if (!rows || rows.length !== runTasks.length) {
    const reason = failureReason(run, passwords);
    return opts.tasks.map((t, i) =>
      results[i] ?? {
        seat: t.seat,
        action: t.action,
        workshop: t.workshop,
        ok: false,
        hostFailure: true,
        error: `Seat playbook failed: ${reason}`,
      }
    );
  }
  if (!run.ok && opts.log) {
    opts.log(
      `seats.yml ${backend.name}: ${failureReason(run, passwords)} (after the seat results came back)`,
    );
  }
  rows.forEach((r, j) => {
    const i = runTasks[j].index;
    const res: SeatResult = {
      seat: opts.tasks[i].seat,
      action: opts.tasks[i].action,
      workshop: opts.tasks[i].workshop,
      ok: r.ok === true,
    };
    if (res.ok) res.password = passwords[i];
    if (typeof r.completion === "number") res.completion = r.completion;
    if (r.status) res.status = r.status;
    if (r.error) res.error = r.error;
    if (r.replayed) res.replayed = true;
    results[i] = res;
  });
  return results as SeatResult[];
}

/** "7" or "3-9" -> seat numbers. */
export function parseSeatRange(text: string): number[] {
  const m = text.match(/^(\d+)(?:-(\d+))?$/);
  if (!m) throw new WodError(`Invalid seat range "${text}": expected N or N-M`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (b < a) throw new WodError(`Invalid seat range "${text}": ${b} is below ${a}`);
  if (b - a >= 10000) throw new WodError(`Invalid seat range "${text}": more than 10000 seats`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}
