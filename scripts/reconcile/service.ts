// `wod reconcile` as a service: the Reconciler (reconciler.ts) wired to the real passes: apply.ts
// (the code of `wod apply`, called with lease: false because the reconciler holds the environment's
// lease itself, state/lease.ts environmentLease), expire.ts every minute, the tip watcher (tip.ts)
// as the fallback for missed nudges, and the HTTP endpoint (http.ts). Logs are JSON lines: every line
// about an order names it (`order`, or `orders` for a line about several), and no line carries a
// participant's address.
import type { Config } from "../config/load.ts";
import { requireEnvironment } from "../config/load.ts";
import type { Seat } from "../config/types.gen.ts";
import { openStore, seatKey, type StateStore } from "../state/store.ts";
import { environmentLease } from "../state/lease.ts";
import { readDeliveries } from "../state/deliveries.ts";
import { apply, type RunSeatTasks } from "./apply.ts";
import { expire } from "./expire.ts";
import { type PassResult, Reconciler, type ReconcilerOptions } from "./reconciler.ts";
import { serveReconciler } from "./http.ts";
import { stateTipWatcher } from "./tip.ts";

export type EventLog = (event: string, fields?: Record<string, unknown>) => void;

/** Anything shaped like an email address, in a free-text line (error messages of SMTP servers). */
const ADDRESS = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

/**
 * Turns the text lines of apply and expire into JSON-lines events: the order ids of the seats a line
 * names (`backend/seat`, or `backend: ACTION seat, ...` for a plan line) are added from `orders`, and
 * anything that looks like an email address is replaced.
 */
export function lineLogger(
  log: EventLog,
  event: string,
  orders: Map<string, string[]>,
): (line: string) => void {
  return (line: string) => {
    const ids = new Set<string>();
    for (const m of line.matchAll(/([A-Za-z0-9][\w.-]*)\/(\d+)\b/g)) {
      for (const id of orders.get(`${m[1]}/${m[2]}`) ?? []) ids.add(id);
    }
    const plan = /^([A-Za-z0-9][\w.-]*): ((?:[A-Z]+ \d+(?:, )?)+)$/.exec(line);
    if (plan) {
      for (const m of plan[2].matchAll(/[A-Z]+ (\d+)/g)) {
        for (const id of orders.get(`${plan[1]}/${m[1]}`) ?? []) ids.add(id);
      }
    }
    for (const m of line.matchAll(/\border ([A-Za-z0-9][\w.:-]*)/g)) ids.add(m[1]);
    const fields: Record<string, unknown> = { message: line.replace(ADDRESS, "<address>") };
    if (/^warning: /.test(line)) fields.level = "warning";
    if (ids.size === 1) fields.order = [...ids][0];
    else if (ids.size > 1) fields.orders = [...ids];
    log(event, fields);
  };
}

export interface ServiceOptions {
  root: string;
  env: string;
  privateDir?: string;
  config: Config;
  /** Default: the environment's store. */
  store?: StateStore;
  /** HTTP endpoint (loopback); undefined: none. */
  health?: { hostname: string; port: number };
  log: EventLog;
  reconciler?: ReconcilerOptions;
  /** Passed to apply and expire (tests). */
  identities?: string[];
  getenv?: (name: string) => string | undefined;
  /** The backend run (tests; default the real playbook run). */
  runSeatTasks?: RunSeatTasks;
}

export interface Service {
  reconciler: Reconciler;
  /** The HTTP endpoint's URL, when one was asked for. */
  url?: string;
  /** Finishes the running pass, releases the lease, closes everything. */
  stop(): Promise<void>;
}

function countSeats(seats: Seat[]): { byStatus: Record<string, number>; pending: number } {
  const byStatus: Record<string, number> = {};
  for (const s of seats) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  return { byStatus, pending: seats.filter((s) => (s.pending ?? []).length > 0 && !s.parked).length };
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { root, env: envName, config, log } = opts;
  const env = requireEnvironment(config, envName).value;
  const store = opts.store ?? await openStore(root, envName, { config, privateDir: opts.privateDir });
  const watcher = await stateTipWatcher(root, envName, env, store);
  const orders = new Map<string, string[]>();
  // What the last apply read, when it committed nothing: the counts for /metrics without a new read.
  let lastRead: { all: Seat[]; deliveries: number } | undefined;
  const common = {
    root,
    env: envName,
    privateDir: opts.privateDir,
    config,
    store,
    identities: opts.identities,
  };
  const reconciler = new Reconciler({
    async applyOnce(): Promise<PassResult> {
      orders.clear();
      const report = await apply({
        ...common,
        getenv: opts.getenv,
        runSeatTasks: opts.runSeatTasks,
        lease: false,
        onPlan: (seats) => {
          for (const s of seats) orders.set(seatKey(s), (s.pending ?? []).map((p) => p.order));
        },
        onRead: (all, deliveries) => (lastRead = { all, deliveries }),
        log: lineLogger(log, "apply", orders),
      });
      // After a commit (seats or deliveries changed) the counts are read again.
      if (report.committed || report.deliveries) lastRead = undefined;
      return {
        applied: report.outcomes.filter((o) => o.ok).length,
        failed: report.outcomes.filter((o) => !o.ok).length,
        orders: [...new Set(report.outcomes.map((o) => o.order))],
        deliveriesFailed: report.deliveries?.failed ?? 0,
        deliveriesPending: report.deliveries?.pending ?? lastRead?.deliveries ??
          (await readDeliveries(store)).length,
      };
    },
    async expireOnce(now: Date) {
      const r = await expire({ ...common, now, log: lineLogger(log, "expire", orders) });
      return { recorded: r.recorded };
    },
    stateTip: () => watcher.tip(),
    seatCounts: async () =>
      lastRead ? { ...countSeats(lastRead.all), deliveries: lastRead.deliveries } : {
        ...countSeats(await store.readSeats()),
        deliveries: (await readDeliveries(store)).length,
      },
    lease: environmentLease(store, {
      purpose: `reconcile ${envName}`,
      log: (l) => log("lease", { message: l }),
    }),
    log,
  }, opts.reconciler);
  const http = opts.health ? serveReconciler(reconciler, opts.health) : undefined;
  reconciler.start();
  log("reconciler-started", { env: envName, health: http?.url, state: store.where });
  return {
    reconciler,
    url: http?.url,
    async stop() {
      await reconciler.stop();
      await http?.server.shutdown();
      await watcher.close();
      if (!opts.store) await store.close();
      log("reconciler-stopped", { env: envName });
    },
  };
}
