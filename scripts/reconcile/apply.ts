// Apply: make the backends match recorded state, in four steps: plan (plan.ts: the seats with pending
// actions, per backend), run (run.ts: the seat-action playbook ONCE per backend for all of them),
// deliver (deliver.ts: credentials to the front end and/or the participant, a few at a time; every
// other action reported to the front end) and commit (commit.ts: what happened, in one commit: active
// / free / held-for-reset, or failed with the reason, kept pending and retried by the next apply;
// after timing.max_attempts failures in a row the seat is parked and left to an operator).
// A host-level failure (no seat result came back) changes no seat: the next apply runs the actions
// again, and the backend recognises a CREATE it already applied by its order id (home kept, new
// password), so a crash between the credentials and the commit loses no work. One failing seat does
// not hold back the others. Nothing pending: no run, no commit. Everything after the first read runs
// under the environment's lease on the state store (state/lease.ts), so two applies (a local one, an
// Actions one, a reconciler) never run seat actions at the same time. As the original platform did,
// the password is reported BEFORE the student's hub server is started: the playbook runs without
// server starts when the hub API is reachable from here (service token: sandbox status or
// $WOD_HUB_TOKEN_FILE), and the servers of the new seats are started through the hub API after the
// commit; a failed start is only logged (the hub spawns the server at login anyway). Without a hub
// token the playbook starts them, as before.
import type { Config } from "../config/load.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import type { Environment, EnvironmentBackend, Seat } from "../config/types.gen.ts";
import { redactText } from "../common/exec.ts";
import { openStore, seatKey, type StateStore } from "../state/store.ts";
import { DEFAULT_MAX_ATTEMPTS } from "../state/machine.ts";
import { deliverNotices } from "../notify/notices.ts";
import { requireCurrentInstall } from "../backend/install_targets.ts";
import { acquireLease, type Lease, type LeaseOptions } from "../state/lease.ts";
import { runSeatTasks, type SeatResult, type SeatTask } from "../backend/seats.ts";
import type { HubClient } from "../backend/hub.ts";
import { type PlanItem, planPending, roundItems, unrunnableReason } from "./plan.ts";
import { itemResult, runBackend, type RunSeatTasks } from "./run.ts";
import { defaultHub, Delivery, DELIVERY_PARALLEL, mapLimit, startServers } from "./deliver.ts";
import { commitOutcome, type SeatOutcome, type Step } from "./commit.ts";
import {
  type DeliveriesReport,
  dueDeliveries,
  type FailedCallback,
  recordFailedCallbacks,
  retryDeliveries,
} from "./deliveries.ts";

export type { RunSeatTasks } from "./run.ts";
export type { SeatOutcome } from "./commit.ts";

export interface ApplyOptions {
  root: string;
  env: string;
  privateDir?: string;
  dryRun?: boolean;
  config?: Config;
  store?: StateStore;
  runSeatTasks?: RunSeatTasks;
  now?: () => Date;
  log?: (line: string) => void;
  /** age identities opening sealed emails (default: WOD_AGE_IDENTITY / WOD_AGE_IDENTITY_FILE). */
  identities?: string[];
  /** Environment lookup for the front-end credentials (default Deno.env.get). */
  getenv?: (name: string) => string | undefined;
  /**
   * Hub API client starting the servers of created seats after the credentials are delivered, or
   * undefined to let the backend run start them. Default: from the backend's connection (sandbox
   * status, or hub_url + $WOD_HUB_TOKEN_FILE); with an injected runSeatTasks, none.
   */
  hub?: (backend: EnvironmentBackend) => Promise<HubClient | undefined>;
  /**
   * The environment's lease on the state store, taken before any backend run and given back at the
   * end (state/lease.ts); false: none (the caller holds it, e.g. the reconciler, or tests).
   */
  lease?: LeaseOptions | false;
  /** Called with the seats this apply acts on, once planned under the lease (the reconciler's logs). */
  onPlan?: (seats: Seat[]) => void;
  /**
   * Called with every recorded seat and the number of pending deliveries as last read by this apply
   * (before its own commit), so that a caller can count them without reading them again.
   */
  onRead?: (all: Seat[], pendingDeliveries: number) => void;
}

export interface ApplyReport {
  /** Tasks per backend (what was, or with --dry-run would be, run). */
  plan: { backend: string; tasks: SeatTask[] }[];
  outcomes: SeatOutcome[];
  committed: boolean;
  /** Backend runs made (one per backend and step). */
  runs?: number;
  /** Front-end callbacks retried and failed in this apply, and those still pending after it. */
  deliveries?: DeliveriesReport;
}

const secs = (ms: number) => (ms / 1000).toFixed(2);

/** One apply pass after planning: the runs, the deliveries, the steps and outcomes of every seat. */
class Pass {
  readonly steps: Map<string, Step[]>;
  readonly outcomes: SeatOutcome[] = [];
  /** Seats created by this apply whose server the hub API starts after the commit. */
  readonly deferredStarts = new Map<string, HubClient>();
  runs = 0;
  /** Front-end callbacks that failed (recorded as pending deliveries after the commit). */
  readonly failedCallbacks: FailedCallback[] = [];
  private readonly hubs = new Map<string, Promise<HubClient | undefined>>();

  constructor(
    private readonly opts: ApplyOptions,
    private readonly cfg: Config,
    private readonly env: Environment,
    private readonly delivery: Delivery,
    private readonly log: (line: string) => void,
    readonly seats: Seat[],
    /** Backends whose install record was found current before this pass (requireCurrentInstall). */
    private readonly current: ReadonlySet<string> = new Set(),
  ) {
    this.steps = new Map(seats.map((x) => [seatKey(x), []]));
  }

  /** Round k runs the k-th pending action of every seat whose earlier actions succeeded. */
  async runRounds(): Promise<void> {
    for (let round = 0;; round++) {
      const todo = roundItems(this.seats, (s) => this.steps.get(seatKey(s))!, round);
      if (todo.size === 0) break;
      await Promise.all([...todo].map(async ([backend, items]) => {
        this.runs++;
        await this.runItems(backend, items);
      }));
    }
  }

  /** Hub API per backend for starting servers after the credentials are out (undefined: the run does). */
  private hubFor(b: EnvironmentBackend): Promise<HubClient | undefined> {
    if (!this.hubs.has(b.name)) {
      const getenv = this.opts.getenv ?? ((k: string) => Deno.env.get(k));
      const find = this.opts.hub ??
        (this.opts.runSeatTasks
          ? () => Promise.resolve(undefined)
          : (x: EnvironmentBackend) => defaultHub(x, this.opts.env, getenv));
      this.hubs.set(
        b.name,
        find(b).catch((err) => {
          const why = (err as Error).message.split("\n")[0];
          this.log(`${b.name}: hub API not usable from here, the backend run starts the servers: ${why}`);
          return undefined;
        }),
      );
    }
    return this.hubs.get(b.name)!;
  }

  private record(backend: string, { seat, p }: PlanItem, step: Step | undefined, out: Partial<SeatOutcome>) {
    if (step) this.steps.get(seatKey(seat))!.push(step);
    this.outcomes.push({ backend, seat: seat.seat, action: p.action, order: p.order, ok: false, ...out });
  }

  private fail(backend: string, item: PlanItem, reason: string) {
    this.record(backend, item, { order: item.p.order, action: item.p.action, ok: false, reason }, { reason });
  }

  private async runItems(backend: string, items: PlanItem[]): Promise<void> {
    // A seat the backend cannot take (unknown workshop, outside the pool) fails alone.
    const runnable = items.filter((item) => {
      const why = unrunnableReason(this.cfg, this.opts.env, this.env, backend, item);
      if (why) this.fail(backend, item, why);
      return !why;
    });
    const b = this.env.backends.find((x) => x.name === backend);
    if (runnable.length === 0 || !b) return;
    const hub = runnable.some(({ p }) => p.action === "CREATE") ? await this.hubFor(b) : undefined;
    const t0 = performance.now();
    const run = await runBackend({
      run: this.opts.runSeatTasks ?? runSeatTasks,
      config: this.cfg,
      privateDir: this.opts.privateDir,
      env: this.opts.env,
      backend,
      items: runnable,
      startServers: hub === undefined,
      log: this.log,
      seatToolCurrent: this.current.has(backend),
    });
    const t1 = performance.now();
    // Credentials go out a few at a time; one failed delivery does not hold back the others.
    const done = await mapLimit(runnable, DELIVERY_PARALLEL, async (item) => {
      const res = itemResult(run, item);
      return "reason" in res ? res : { step: await this.deliver(b, item, res.ok, run.secrets) };
    });
    this.log(
      `${backend}: timings: backend run ${secs(t1 - t0)} s, deliveries ${secs(performance.now() - t1)} s`,
    );
    // Recorded in plan order, whatever order the deliveries finished in.
    runnable.forEach((item, i) => {
      const res = done[i];
      if ("step" in res) {
        const { step } = res;
        if (step.ok && item.p.action === "CREATE" && hub) this.deferredStarts.set(seatKey(item.seat), hub);
        this.record(backend, item, step, { ok: step.ok, reason: step.reason, delivered: step.delivered });
      } else if (res.hostLevel) this.record(backend, item, undefined, { reason: res.reason });
      else this.fail(backend, item, res.reason);
    });
  }

  private async deliver(
    b: EnvironmentBackend,
    { seat, p }: PlanItem,
    r: SeatResult,
    secrets: string[],
  ): Promise<Step & { delivered: string[] }> {
    if (r.replayed) {
      this.log(
        `${seatKey(seat)}: ${p.action} of order ${p.order} had been applied already: home kept, new password`,
      );
    }
    const step: Step & { delivered: string[] } = {
      order: p.order,
      action: p.action,
      ok: true,
      delivered: [],
    };
    if (r.completion !== undefined) step.completion = r.completion;
    try {
      if (p.action === "CREATE") {
        if (!r.password) throw new Error("the backend returned no password");
        await this.delivery.created(seat, b, r.password, step.delivered);
      } else {
        const cb = this.delivery.callbackOf(seat, b, p, r);
        await this.delivery.report(cb).then(
          (told) => told && step.delivered.push("frontend"),
          (err) => {
            // Not only logged: kept in state as a pending delivery, retried by the next passes.
            const error = redactText((err as Error).message.split("\n")[0], secrets);
            this.log(`warning: ${seatKey(seat)}: ${p.action} not reported to the front end: ${error}`);
            this.failedCallbacks.push({
              backend: seat.backend,
              seat: seat.seat,
              order: p.order,
              callback: cb,
              error,
            });
          },
        );
      }
    } catch (err) {
      step.ok = false;
      step.reason = redactText(`credentials not delivered: ${(err as Error).message}`, secrets);
    }
    return step;
  }
}

export async function apply(opts: ApplyOptions): Promise<ApplyReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cfg = opts.config ?? await loadConfig(opts.root, { privateDir: opts.privateDir });
  const env = requireEnvironment(cfg, opts.env).value;
  const store = opts.store ??
    await openStore(opts.root, opts.env, { config: cfg, privateDir: opts.privateDir });
  const nowMs = () => (opts.now ? opts.now() : new Date()).getTime();
  let lease: Lease | undefined;
  const started = performance.now();
  try {
    let { all, seats, plan } = await planPending(store, log);
    let { due, total } = await dueDeliveries(store, nowMs());
    if ((plan.length > 0 || due.length > 0) && !opts.dryRun && opts.lease !== false) {
      // One writer of seat actions per environment; what is pending is read again under the lease.
      lease = await acquireLease(store, { purpose: `apply ${opts.env}`, log, ...(opts.lease ?? {}) });
      ({ all, seats, plan } = await planPending(store, log));
      ({ due, total } = await dueDeliveries(store, nowMs()));
    }
    opts.onRead?.(all, total);
    // Orders that changed nothing on a seat still owe the front end a callback (issue 17 items 5-6).
    if (!opts.dryRun) await deliverNotices({ store, cfg, env: opts.env, getenv: opts.getenv, log });
    for (const d of due) {
      log(`${d.backend}/${d.seat}: ${d.action} of order ${d.order} due for delivery again`);
    }
    if (plan.length === 0 && due.length === 0) {
      log(`Nothing pending in ${opts.env}: no backend run, no commit`);
      return { plan, outcomes: [], committed: false };
    }
    if (!opts.dryRun) opts.onPlan?.(seats);
    for (const p of plan) log(`${p.backend}: ${p.tasks.map((t) => `${t.action} ${t.seat}`).join(", ")}`);
    if (opts.dryRun) return { plan, outcomes: [], committed: false };
    // Never a seat action with a seat script or roles older than this repository's (install first).
    const planned = performance.now();
    let current: string[] = [];
    if (plan.length > 0 && !opts.runSeatTasks) {
      const backends = plan.map((p) => p.backend);
      current = await requireCurrentInstall({ root: opts.root, config: cfg, env: opts.env, backends, log });
    }
    const checked = performance.now();
    const delivery = await Delivery.open({ cfg, env, identities: opts.identities, getenv: opts.getenv, log });
    try {
      const retried = due.length > 0
        ? await retryDeliveries({ store, delivery, due, identities: opts.identities, nowMs: nowMs(), log })
        : undefined;
      const report = plan.length > 0
        ? await applyPlan(opts, {
          cfg,
          env,
          store,
          delivery,
          seats,
          log,
          nowMs,
          laps: { started, planned, checked },
          current: new Set(current),
        })
        : { plan, outcomes: [], committed: false };
      const failedNow = report.deliveries?.failed ?? 0;
      if (retried || failedNow > 0) {
        const pending = (await dueDeliveries(store, Infinity)).total;
        report.deliveries = {
          delivered: retried?.delivered ?? [],
          failed: (retried?.failed ?? 0) + failedNow,
          pending,
        };
      }
      if (lease?.lost) log(`warning: ${lease.lost}`);
      return { ...report, plan };
    } finally {
      delivery.close();
    }
  } finally {
    await lease?.release();
    if (!opts.store) await store.close();
  }
}

/** Run, deliver, commit: the planned seats (under the lease); then the hub servers of new seats. */
async function applyPlan(
  opts: ApplyOptions,
  c: {
    cfg: Config;
    env: Environment;
    store: StateStore;
    delivery: Delivery;
    seats: Seat[];
    log: (line: string) => void;
    nowMs: () => number;
    /** performance.now() at the start, after planning and after the install check (timings line). */
    laps: { started: number; planned: number; checked: number };
    /** Backends whose install record was found current (their seat script is not copied again). */
    current?: ReadonlySet<string>;
  },
): Promise<ApplyReport> {
  const { cfg, env, store, log } = c;
  const pass = new Pass(opts, cfg, env, c.delivery, log, c.seats, c.current);
  await pass.runRounds();
  const ran = performance.now();
  const committed = await commitOutcome({
    store,
    cfg,
    env: opts.env,
    steps: pass.steps,
    outcomes: pass.outcomes,
    now: new Date(c.nowMs()).toISOString(),
    maxAttempts: env.timing?.max_attempts ?? DEFAULT_MAX_ATTEMPTS,
  });
  for (const o of pass.outcomes) {
    const what = o.ok ? "ok" : `failed: ${o.reason}`;
    log(
      `${o.backend}/${o.seat} ${o.action} ${what}${
        o.delivered?.length ? ` (delivered: ${o.delivered.join(", ")})` : ""
      }`,
    );
  }
  const failed = await recordFailedCallbacks(store, env, pass.failedCallbacks, c.nowMs(), log);
  const recorded = performance.now();
  await startServers(c.seats, pass.steps, pass.deferredStarts, log);
  log(
    `timings: read and plan ${secs(c.laps.planned - c.laps.started)} s, install check ${
      secs(c.laps.checked - c.laps.planned)
    } s, runs and deliveries ${secs(ran - c.laps.checked)} s, commit ${secs(recorded - ran)} s, ` +
      `server starts ${secs(performance.now() - recorded)} s`,
  );
  const report: ApplyReport = { plan: [], outcomes: pass.outcomes, committed, runs: pass.runs };
  if (failed > 0) report.deliveries = { delivered: [], failed, pending: 0 };
  return report;
}
