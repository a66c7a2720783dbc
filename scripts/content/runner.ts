// test-workshop: run every notebook of a workshop as a participant would. For each workshop (and
// each of its modes) a throwaway seat is taken on a backend of the environment, created by a real
// CREATE (rendered content, hooks), logged into with its new password, and every notebook is executed
// through the student's own Jupyter server with the kernel the notebook names. The seats are cleaned
// up by a real CLEANUP whatever happened, also when the run is aborted (SIGINT/SIGTERM in the CLI).
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { type Config, loadConfig, requireEnvironment, type WorkshopEntry } from "../config/load.ts";
import { checkTemplates, PLATFORM_VARS } from "../config/template.ts";
import { connectionFor, runSeatTasks, type SeatResult, type SeatTask } from "../backend/seats.ts";
import { HubClient, hubFetch, HubSession } from "../backend/hub.ts";
import { openStore } from "../state/store.ts";
import { type ExecResult, JupyterServer, type KernelChannel } from "./kernel.ts";
import {
  cellTags,
  errorLine,
  hasChallengeMode,
  normaliseOutput,
  type Notebook,
  orderNotebooks,
  outputText,
  sourceOf,
} from "./notebook.ts";

export type Mode = "WKSHP" | "CHLG";

/** Defaults when workshop.yaml has no `test` block (schemas/workshop.schema.json). */
export const DEFAULT_CELL_TIMEOUT_S = 120;
export const DEFAULT_WORKSHOP_TIMEOUT_S = 1800;

export type CellStatus = "passed" | "failed" | "skipped" | "not-run";

export interface CellResult {
  /** 1-based position of the cell in the notebook (markdown cells count). */
  cell: number;
  status: CellStatus;
  ms: number;
}

/** One reported problem; `cell` and `line` are absent for notebook- or workshop-level problems. */
export interface Failure {
  file: string;
  cell?: number;
  line?: number;
  name: string;
  message: string;
  /** The source line that raised, when known. */
  source?: string;
}

export interface NotebookResult {
  path: string;
  kernel: string;
  cells: CellResult[];
}

export interface WorkshopResult {
  workshop: string;
  mode: Mode;
  backend: string;
  seat: number;
  notebooks: NotebookResult[];
  failures: Failure[];
  counts: { run: number; passed: number; failed: number; skipped: number; notRun: number };
  seconds: number;
  /** Seconds of the seat's CREATE (shared by the runs of one backend). */
  createSeconds: number;
  /** True once the seat's CLEANUP succeeded. */
  cleanedUp: boolean;
  ok: boolean;
}

export interface TestOptions {
  root: string;
  privateDir?: string;
  env: string;
  /** Workshop ids (default: every workshop with a range in the environment). */
  workshops?: string[];
  /** Modes to run (default: WKSHP, and CHLG where the content has a challenge variant). */
  modes?: Mode[];
  log?: (line: string) => void;
  /** Aborting stops the notebooks at once; the seats are still cleaned up. */
  signal?: AbortSignal;
  /** Called for each workshop as soon as its notebooks ran (before the cleanup). */
  onResult?: (r: WorkshopResult) => void;
}

interface Planned {
  w: WorkshopEntry;
  mode: Mode;
  backend: string;
  seat: number;
}

async function textFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    if (e.name.startsWith(".") || (!rel && e.name === "hooks")) continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await textFiles(dir, p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

/** WKSHP, plus CHLG when any content file has `{% if MODEWS == 'CHLG' %}`. */
export async function workshopModes(w: WorkshopEntry): Promise<Mode[]> {
  for (const p of await textFiles(w.dir)) {
    if (!/\.(ipynb|md|txt|py|sh|json|ya?ml|html|j2)$/i.test(p)) continue;
    const text = await Deno.readTextFile(join(w.dir, p)).catch(() => "");
    if (hasChallengeMode(text)) return ["WKSHP", "CHLG"];
  }
  return ["WKSHP"];
}

export function testSettings(w: WorkshopEntry): { cellTimeoutS: number; timeoutS: number } {
  const t = w.value.test ?? {};
  return {
    cellTimeoutS: t.cell_timeout ?? DEFAULT_CELL_TIMEOUT_S,
    timeoutS: t.timeout ?? DEFAULT_WORKSHOP_TIMEOUT_S,
  };
}

/**
 * Throwaway seats: for each run, the highest seat of the workshop's range on the first backend that
 * has one, whose recorded state is free (or absent) and whose hub user has no running server. A seat a
 * participant holds is never chosen.
 */
/** "backend/seat" of every seat the recorded state shows as not free. */
async function heldSeats(opts: TestOptions, cfg: Config): Promise<Set<string>> {
  const store = await openStore(opts.root, opts.env, { privateDir: opts.privateDir, config: cfg });
  try {
    const recorded = await store.readSeats();
    return new Set(recorded.filter((s) => s.status !== "free").map((s) => `${s.backend}/${s.seat}`));
  } finally {
    await store.close();
  }
}

async function planSeats(opts: TestOptions, cfg: Config, runs: { w: WorkshopEntry; mode: Mode }[]) {
  const env = cfg.environments.get(opts.env)!;
  const busy = await heldSeats(opts, cfg);
  const hubs = new Map<string, HubClient>();
  const planned: Planned[] = [];
  for (const { w, mode } of runs) {
    const b = env.value.backends.find((b) => b.ranges?.[w.id]);
    if (!b) {
      throw new WodError(
        `Workshop ${w.id} has no seat range on any backend of environment "${opts.env}" (${env.file}): ` +
          `add one under a backend's ranges to test it there`,
      );
    }
    if (!hubs.has(b.name)) {
      const conn = await connectionFor(b, opts.env);
      const tokenFile = conn.hubTokenFile ?? Deno.env.get("WOD_HUB_TOKEN_FILE");
      if (!tokenFile) {
        throw new WodError(
          `No hub service token for backend "${b.name}" of environment "${opts.env}": set WOD_HUB_TOKEN_FILE`,
        );
      }
      hubs.set(b.name, await HubClient.fromTokenFile(conn.hubUrl, tokenFile));
    }
    const [lo, hi] = b.ranges![w.id] as [number, number];
    const hub = hubs.get(b.name)!;
    const seat = await pickTestSeat(
      [lo, hi],
      (s) => busy.has(`${b.name}/${s}`),
      (s) => hub.serverRunning(`student${s}`),
    );
    if (seat !== undefined) busy.add(`${b.name}/${seat}`);
    if (seat === undefined) {
      throw new WodError(
        `No free seat in range [${lo}, ${hi}] of ${w.id} on backend "${b.name}" (environment "${opts.env}") ` +
          "to test on: every seat is held by a participant or running; try again later",
      );
    }
    planned.push({ w, mode, backend: b.name, seat });
  }
  return { planned, hubs };
}

/**
 * The test seat of a range: the highest seat that is not recorded as held (`recorded`) and whose hub
 * user has no running server (`running`); participants are allocated from the bottom of a range.
 */
export async function pickTestSeat(
  [lo, hi]: [number, number],
  recorded: (seat: number) => boolean,
  running: (seat: number) => Promise<boolean>,
): Promise<number | undefined> {
  for (let s = hi; s >= lo; s--) {
    if (recorded(s)) continue;
    if (await running(s)) continue;
    return s;
  }
  return undefined;
}

const counts0 = () => ({ run: 0, passed: 0, failed: 0, skipped: 0, notRun: 0 });

/** Runs the tests; resolves with one result per (workshop, mode). Seats are always cleaned up. */
export async function testWorkshops(opts: TestOptions): Promise<WorkshopResult[]> {
  const log = opts.log ?? (() => {});
  const cfg = await loadConfig(opts.root, { privateDir: opts.privateDir });
  const env = requireEnvironment(cfg, opts.env);
  const ids = opts.workshops?.length
    ? opts.workshops
    : [...cfg.workshops.keys()].filter((id) => env.value.backends.some((b) => b.ranges?.[id])).sort();
  const runs: { w: WorkshopEntry; mode: Mode }[] = [];
  for (const id of ids) {
    const w = cfg.workshops.get(id);
    if (!w) throw new WodError(`Unknown workshop "${id}": no workshops/${id}/workshop.yaml in ${opts.root}`);
    for (const mode of await workshopModes(w)) {
      if (!opts.modes || opts.modes.includes(mode)) runs.push({ w, mode });
    }
  }
  const { planned, hubs } = await planSeats(opts, cfg, runs);
  const results: WorkshopResult[] = [];
  // One CREATE and one CLEANUP per backend (one playbook run each); when the CREATE fails and it held
  // several workshops, each failed workshop is created again alone, so one workshop whose content does
  // not render does not fail the others.
  const groups = Map.groupBy(planned, (p) => p.backend);
  for (const [backend, list] of groups) {
    const seats = list.map((p) => `${p.w.id}${p.mode === "CHLG" ? " (CHLG)" : ""}: seat ${p.seat}`).join(
      ", ",
    );
    log(`test-workshop: backend ${backend}: creating ${seats}`);
    const created: (SeatResult | undefined)[] = [];
    const create = async (part: Planned[]) => {
      if (opts.signal?.aborted || part.length === 0) return;
      const rows = await runSeatTasks({
        config: cfg,
        privateDir: opts.privateDir,
        env: opts.env,
        backend,
        tasks: part.map((p): SeatTask => ({
          action: "CREATE",
          workshop: p.w.id,
          seat: p.seat,
          mode: p.mode,
        })),
        log,
      });
      for (const [k, p] of part.entries()) created[list.indexOf(p)] = rows[k];
    };
    const t0 = performance.now();
    try {
      await create(list);
      const failedIds = [...new Set(list.filter((_, i) => !created[i]?.ok).map((p) => p.w.id))];
      if (failedIds.length && new Set(list.map((p) => p.w.id)).size > 1) {
        for (const id of failedIds) {
          log(`test-workshop: backend ${backend}: creating ${id} alone after the failed CREATE`);
          await create(list.filter((p) => p.w.id === id));
        }
      }
      const createSeconds = (performance.now() - t0) / 1000;
      for (const [i, p] of list.entries()) {
        const r = created[i];
        const res = r?.ok && r.password && !opts.signal?.aborted
          ? await runSeat(opts, p, r.password, hubs.get(backend)!, createSeconds)
          : failedRun(
            p,
            createSeconds,
            r ? `CREATE failed: ${r.error ?? "unknown"}` : "interrupted before CREATE",
          );
        if (r && !r.ok) res.failures.push(...await undefinedVariables(p.w, env.value.vars ?? {}, env.file));
        results.push(res);
        opts.onResult?.(res);
      }
    } finally {
      log(`test-workshop: backend ${backend}: cleaning up seats ${list.map((p) => p.seat).join(", ")}`);
      let cleaned: SeatResult[] = [];
      // A seat recorded as held since the plan went to a participant meanwhile: never clean it up.
      const nowHeld = await heldSeats(opts, cfg).catch(() => new Set<string>());
      const taken = list.filter((p) => nowHeld.has(`${backend}/${p.seat}`));
      for (const p of taken) {
        log(`test-workshop: seat ${p.seat} of backend ${backend} is now recorded as held: left as it is`);
      }
      try {
        cleaned = await runSeatTasks({
          config: cfg,
          privateDir: opts.privateDir,
          env: opts.env,
          backend,
          tasks: list.filter((p) => !taken.includes(p)).map((p): SeatTask => ({
            action: "CLEANUP",
            workshop: p.w.id,
            seat: p.seat,
            mode: p.mode,
          })),
          log,
        });
      } catch (err) {
        log(`test-workshop: CLEANUP on backend ${backend} failed: ${(err as Error).message}`);
      }
      for (const p of list) {
        const res = results.find((r) => r.backend === backend && r.seat === p.seat);
        const done = cleaned.find((c) => c.seat === p.seat);
        const ok = done?.ok === true || taken.includes(p);
        if (res) {
          res.cleanedUp = ok;
          if (!ok) {
            res.ok = false;
            res.failures.push({
              file: `workshops/${p.w.id}`,
              name: "CleanupFailed",
              message: `CLEANUP of seat ${p.seat} on backend ${backend} failed: ${
                done?.error ?? "no result"
              }; run \`wod seats cleanup --env ${opts.env} --workshop ${p.w.id} --seats ${p.seat}\``,
            });
          }
        }
      }
    }
  }
  return results;
}

function failedRun(p: Planned, createSeconds: number, message: string): WorkshopResult {
  return {
    workshop: p.w.id,
    mode: p.mode,
    backend: p.backend,
    seat: p.seat,
    notebooks: [],
    failures: [{ file: `workshops/${p.w.id}`, name: "SeatError", message }],
    counts: counts0(),
    seconds: 0,
    createSeconds,
    cleanedUp: false,
    ok: false,
  };
}

function aborted(signal?: AbortSignal): Promise<"aborted"> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
}

/** One seat's test run: what each notebook's cells are judged against, and where results go. */
interface SeatRun {
  opts: TestOptions;
  p: Planned;
  res: WorkshopResult;
  deadline: number;
  timeoutS: number;
  cellTimeoutS: number;
  log: (line: string) => void;
}

/**
 * The student's own API token, asked for with the student's credentials: the service token has no
 * `tokens` scope (it may not mint tokens for anybody), and this one dies with the run.
 */
async function studentToken(
  hub: HubClient,
  user: string,
  password: string,
  timeoutS: number,
): Promise<{ id: string; token: string }> {
  const tokRes = await hubFetch(`${hub.base}/hub/api/users/${user}/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      auth: { username: user, password },
      note: "wod test-workshop",
      expires_in: timeoutS + 600,
    }),
    signal: AbortSignal.timeout(30_000),
  });
  const tok = {
    status: tokRes.status,
    body: await tokRes.json().catch(() => ({})) as { id: string; token: string },
  };
  if (tok.status !== 201 && tok.status !== 200) {
    throw new WodError(`Creating an API token for ${user} at ${hub.base} failed: HTTP ${tok.status}`);
  }
  return tok.body;
}

/** Runs one notebook of the seat's copy (`fullPath` under the home) cell by cell, as the student. */
async function runNotebook(
  run: SeatRun,
  server: JupyterServer,
  specs: Awaited<ReturnType<JupyterServer["kernelspecs"]>>,
  fullPath: string,
  path: string,
): Promise<void> {
  const { opts, p, res, deadline, timeoutS, cellTimeoutS, log } = run;
  const wsFile = (nb: string) => `workshops/${p.w.id}/${nb}`;
  const installed = Object.keys(specs.kernelspecs).sort();
  const nb = (await server.contents(fullPath)).content as Notebook;
  const kernel = nb.metadata?.kernelspec?.name ?? specs.default;
  const nr: NotebookResult = { path, kernel, cells: [] };
  log(`test-workshop: ${p.w.id} (${p.mode}) seat ${p.seat}: running ${path} (kernel ${kernel})`);
  res.notebooks.push(nr);
  const code = nb.cells.map((c, i) => ({ c, i: i + 1 })).filter(({ c }) => c.cell_type === "code");
  const notRun = (from: number) => {
    for (const { c, i } of code) {
      if (i >= from && sourceOf(c).trim() !== "") nr.cells.push({ cell: i, status: "not-run", ms: 0 });
    }
  };
  if (!specs.kernelspecs[kernel]) {
    const display = nb.metadata?.kernelspec?.display_name;
    res.failures.push({
      file: wsFile(path),
      name: "MissingKernel",
      message: `the notebook names kernel "${kernel}"${display ? ` (${display})` : ""}, which is not ` +
        `installed on backend ${p.backend} (installed: ${installed.join(", ")}); ` +
        `install it on the backend (ansible/) or change the notebook's kernelspec`,
    });
    notRun(0);
    return;
  }
  // No kernel for a notebook without code to run (skipped cells still count).
  if (code.every(({ c }) => sourceOf(c).trim() === "" || cellTags(c).skip)) {
    for (const { c, i } of code) {
      if (sourceOf(c).trim() !== "") nr.cells.push({ cell: i, status: "skipped", ms: 0 });
    }
    return;
  }
  const sess = await server.createSession(fullPath, kernel);
  let channel: KernelChannel | undefined;
  try {
    channel = await server.connect(sess.kernel.id);
    for (const [k, { c, i }] of code.entries()) {
      const src = sourceOf(c);
      if (src.trim() === "") continue;
      const tags = cellTags(c);
      for (const t of tags.unknown) {
        res.failures.push({
          file: wsFile(path),
          cell: i,
          name: "UnknownTag",
          message: `unknown tag "${t}" (known: wod:skip, wod:raises, wod:check-output, wod:timeout=SECONDS)`,
        });
      }
      if (tags.skip) {
        nr.cells.push({ cell: i, status: "skipped", ms: 0 });
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0 || opts.signal?.aborted) {
        if (left <= 0) {
          res.failures.push({
            file: wsFile(path),
            cell: i,
            name: "WorkshopTimeout",
            message: `the workshop did not finish within ${timeoutS} s (test.timeout in workshop.yaml); ` +
              "this and the following cells were not run",
          });
        }
        notRun(i);
        break;
      }
      const cellTimeout = Math.min((tags.timeoutS ?? cellTimeoutS) * 1000, left);
      const r = await Promise.race([channel.execute(src, cellTimeout), aborted(opts.signal)]);
      if (r === "aborted") {
        notRun(i);
        break;
      }
      const failure = judge(r, c, tags, src, cellTimeout, i, wsFile(path));
      nr.cells.push({ cell: i, status: failure ? "failed" : "passed", ms: r.ms });
      if (failure) res.failures.push(failure);
      if (r.status === "lost") {
        notRun(code[k + 1]?.i ?? Infinity);
        break;
      }
    }
  } finally {
    channel?.close();
    await server.deleteSession(sess.id);
  }
}

/** The cell counts of a seat's result, from its notebooks' cells. */
function countCells(res: WorkshopResult): void {
  for (const nb of res.notebooks) {
    for (const c of nb.cells) {
      if (c.status === "passed") res.counts.passed++;
      else if (c.status === "failed") res.counts.failed++;
      else if (c.status === "skipped") res.counts.skipped++;
      else res.counts.notRun++;
      if (c.status === "passed" || c.status === "failed") res.counts.run++;
    }
  }
}

async function runSeat(
  opts: TestOptions,
  p: Planned,
  password: string,
  hub: HubClient,
  createSeconds: number,
): Promise<WorkshopResult> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const user = `student${p.seat}`;
  const res: WorkshopResult = {
    workshop: p.w.id,
    mode: p.mode,
    backend: p.backend,
    seat: p.seat,
    notebooks: [],
    failures: [],
    counts: counts0(),
    seconds: 0,
    createSeconds,
    cleanedUp: false,
    ok: false,
  };
  const { cellTimeoutS, timeoutS } = testSettings(p.w);
  const deadline = Date.now() + timeoutS * 1000;
  const run: SeatRun = { opts, p, res, deadline, timeoutS, cellTimeoutS, log };
  let tokenId: string | undefined;
  let userToken: string | undefined;
  try {
    // The participant's way in: the hub's login form with the new password.
    const session = new HubSession(hub.base, user);
    if (!(await session.login(password))) {
      res.failures.push({
        file: `workshops/${p.w.id}`,
        name: "LoginFailed",
        message: `the hub at ${hub.base} refused the new password of ${user} (seat ${p.seat})`,
      });
      return res;
    }
    await hub.requestServerStart(user);
    const tok = await studentToken(hub, user, password, timeoutS);
    tokenId = tok.id;
    userToken = tok.token;
    const server = new JupyterServer(`${hub.base}/user/${user}`, tok.token);
    await server.waitReady(90_000);
    const specs = await server.kernelspecs();
    const entry = (p.w.value.entry as string | undefined) ?? "0-ReadMeFirst.ipynb";
    // CREATE puts the content in ~/<ID>/; paths are reported relative to it (as in workshops/<ID>/).
    const dir = p.w.id;
    const paths = orderNotebooks((await server.notebooks(dir)).map((x) => x.slice(dir.length + 1)), entry);
    if (paths.length === 0) {
      res.failures.push({
        file: `workshops/${p.w.id}`,
        name: "NoNotebooks",
        message: `the folder ~/${dir} of ${user} has no notebook after CREATE`,
      });
    }
    for (const path of paths) {
      if (opts.signal?.aborted) break;
      await runNotebook(run, server, specs, `${dir}/${path}`, path);
    }
  } catch (err) {
    res.failures.push({
      file: `workshops/${p.w.id}`,
      name: "RunError",
      message: err instanceof Error ? err.message : String(err),
    });
  } finally {
    if (tokenId && userToken) {
      // The token deletes itself (a user token may manage the user's own tokens).
      await hubFetch(`${hub.base}/hub/api/users/${user}/tokens/${encodeURIComponent(tokenId)}`, {
        method: "DELETE",
        headers: { authorization: `token ${userToken}` },
        signal: AbortSignal.timeout(30_000),
      }).then((r) => r.body?.cancel(), () => {});
    }
    countCells(res);
    res.seconds = (performance.now() - started) / 1000;
    res.ok = res.failures.length === 0 && res.counts.failed === 0 && res.counts.notRun === 0 &&
      !opts.signal?.aborted;
  }
  return res;
}

function firstLine(s: string, max = 300): string {
  const l = s.split("\n").find((x) => x.trim() !== "") ?? "";
  return l.length > max ? l.slice(0, max - 1) + "…" : l;
}

function judge(
  r: ExecResult,
  cell: Notebook["cells"][number],
  tags: ReturnType<typeof cellTags>,
  src: string,
  timeoutMs: number,
  index: number,
  file: string,
): Failure | undefined {
  const srcLine = (line?: number) => line ? src.split("\n")[line - 1]?.trim() : undefined;
  if (r.status === "timeout" || r.status === "lost") {
    const line = r.error ? errorLine(r.error.traceback, r.executionCount) : undefined;
    return {
      file,
      cell: index,
      line,
      name: "Timeout",
      message: `the cell did not finish within ${Math.round(timeoutMs / 100) / 10} s` +
        (r.status === "lost"
          ? "; the kernel did not answer the interrupt, so the rest of the notebook was not run"
          : " and was interrupted") +
        " (raise it with the tag wod:timeout=SECONDS or test.cell_timeout in workshop.yaml)",
      source: srcLine(line),
    };
  }
  if (r.status === "error") {
    if (tags.raises) return undefined;
    const e = r.error!;
    const line = errorLine(e.traceback, r.executionCount);
    return { file, cell: index, line, name: e.ename, message: firstLine(e.evalue), source: srcLine(line) };
  }
  if (tags.raises) {
    return {
      file,
      cell: index,
      name: "NoError",
      message: "the cell is tagged wod:raises but ran without an error",
    };
  }
  if (tags.checkOutput) {
    const want = normaliseOutput(outputText(cell.outputs ?? []));
    const got = normaliseOutput(outputText(r.outputs));
    if (want !== got) {
      const a = want.split("\n");
      const b = got.split("\n");
      let k = 0;
      while (k < Math.max(a.length, b.length) && a[k] === b[k]) k++;
      return {
        file,
        cell: index,
        name: "OutputChanged",
        message: `output line ${k + 1} differs from the stored output (wod:check-output): expected ${
          JSON.stringify(a[k] ?? "(end of output)")
        }, got ${JSON.stringify(b[k] ?? "(end of output)")}`,
      };
    }
  }
  return undefined;
}

/** Variables the seat action itself sets for every rendered file (ansible/roles/wod_seats). */
const SEAT_VARS = ["STDID", "PASSSTU", "MODEWS", "WKSHP", "WODBEEXTFQDN", "HTTPPORT"];

/**
 * Why a CREATE could not render a workshop: template variables its content uses that neither the
 * environment's vars, the workshop's vars nor the seat action define (file:line of the first use).
 */
export async function undefinedVariables(
  w: WorkshopEntry,
  envVars: Record<string, unknown>,
  envFile = "environments/<ENV>.yaml",
): Promise<Failure[]> {
  const defined = new Set([
    ...SEAT_VARS,
    ...Object.keys(envVars),
    ...Object.keys(w.value.vars ?? {}),
    ...[...PLATFORM_VARS].filter((v) => v !== v.toUpperCase()),
  ]);
  const files: string[] = [];
  for (const f of (await textFiles(w.dir)).sort()) {
    if (!/\.(ipynb|md|txt|py|sh|json|ya?ml|html|j2)$/i.test(f) || f === "workshop.yaml") continue;
    files.push(f);
  }
  // The same Jinja2 check the renderer runs (scripts/config/jinja_sandbox.py), with the variables a
  // CREATE on this environment would get.
  const problems = await checkTemplates(files.map((f) => ({ path: join(w.dir, f), vars: [...defined] })));
  const out: Failure[] = [];
  const seen = new Set<string>();
  for (const p of problems) {
    const v = /Template variable "([^"]+)"/.exec(p.message)?.[1];
    if (v && (v.startsWith("ansible_") || seen.has(v))) continue;
    if (v) seen.add(v);
    const rel = p.path.startsWith(w.dir) ? p.path.slice(w.dir.length).replace(/^\/+/, "") : p.path;
    out.push({
      file: `workshops/${w.id}/${rel}:${p.line}:${p.col}`,
      name: v ? "UndefinedVariable" : "TemplateRefused",
      message: v
        ? `template variable ${v} is not defined by the environment's vars, the workshop's ` +
          `vars or the seat action: define it under vars in ${envFile} or workshop.yaml`
        : p.message,
    });
  }
  return out;
}
