// Apply: make the backends match recorded state. Reads the seats with pending actions, runs the
// seat-action playbook ONCE per backend for all of them (scripts/backend/seats.ts runSeatTasks),
// delivers credentials (front-end API and/or participant email, a few at a time), then commits what
// happened in one commit: active / free / held-for-reset, or failed with the reason (kept pending,
// retried by the next apply; after timing.max_attempts failures in a row the seat is parked and left
// to an operator). A host-level failure (no seat result came back) changes no seat: the next apply
// runs the actions again, and the backend recognises a CREATE it already applied by its order id
// (home kept, new password), so a crash between the credentials and the commit loses no work. One
// failing seat does not hold back the others. Nothing pending: no run, no commit. Everything after
// the first read runs under the environment's lease on the state store (lease.ts), so two applies
// (a local one, an Actions one) never run seat actions at the same time. As the original platform did, the password is reported BEFORE the student's hub
// server is started: the playbook runs without server starts when the hub API is reachable from here
// (service token: sandbox status or $WOD_HUB_TOKEN_FILE), and the servers of the new seats are
// started through the hub API after the commit; a failed start is only logged (the hub spawns the
// server at login anyway). Without a hub token the playbook starts them, as before.
import type { Config } from "../config/load.ts";
import { loadConfig } from "../config/load.ts";
import type { EnvironmentBackend, Seat, SeatPendingAction, Workshop } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { redactText } from "../common/exec.ts";
import { openStore, seatKey, type StateStore } from "./store.ts";
import {
  DEFAULT_MAX_ATTEMPTS,
  failed,
  isParked,
  type ResultContext,
  type SeatAction,
  succeeded,
} from "./machine.ts";
import { acquireLease, type Lease, type LeaseOptions } from "./lease.ts";
import { identitiesFromEnv, unseal } from "./seal.ts";
import { FrontendClient } from "../notify/frontend.ts";
import { mailer, renderTemplate } from "../notify/email.ts";
import { maskForActions } from "../workflows/mask.ts";
import { connectionFor, runSeatTasks, type SeatResult, type SeatTask } from "../backend/seats.ts";
import { hubUrlFor } from "../config/connection.ts";
import { HubClient } from "../backend/hub.ts";

export type RunSeatTasks = typeof runSeatTasks;

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
   * end (lease.ts); false: none (tests of the steps alone).
   */
  lease?: LeaseOptions | false;
}

/** Credentials delivered (and hub servers started) at most this many at a time. */
const DELIVERY_PARALLEL = 8;

/** Runs fn over items, at most `limit` at a time; results in item order. fn must not throw. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The hub API client of a backend, from its connection and the service token; undefined if none. */
async function defaultHub(
  b: EnvironmentBackend,
  envName: string,
  getenv: (name: string) => string | undefined,
): Promise<HubClient | undefined> {
  const conn = await connectionFor(b, envName);
  const tokenFile = conn.hubTokenFile ?? getenv("WOD_HUB_TOKEN_FILE");
  if (!tokenFile) return undefined;
  return await HubClient.fromTokenFile(conn.hubUrl.replace(/\/+$/, "").replace(/\/hub$/, ""), tokenFile);
}

export interface SeatOutcome {
  backend: string;
  seat: number;
  action: SeatAction;
  order: string;
  ok: boolean;
  reason?: string;
  delivered?: string[];
}

export interface ApplyReport {
  /** Tasks per backend (what was, or with --dry-run would be, run). */
  plan: { backend: string; tasks: SeatTask[] }[];
  outcomes: SeatOutcome[];
  committed: boolean;
  /** Backend runs made (one per backend and step). */
  runs?: number;
}

interface Step {
  order: string;
  action: SeatAction;
  ok: boolean;
  completion?: number;
  reason?: string;
}

/** Where the participant logs in (for the credentials email): the connection provider's hub URL. */
const hubUrl = hubUrlFor;

export async function apply(opts: ApplyOptions): Promise<ApplyReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cfg = opts.config ?? await loadConfig(opts.root, { privateDir: opts.privateDir });
  const envEntry = cfg.environments.get(opts.env);
  if (!envEntry) throw new WodError(`Unknown environment "${opts.env}"`);
  const env = envEntry.value;
  const store = opts.store ??
    await openStore(opts.root, opts.env, { config: cfg, privateDir: opts.privateDir });
  const now = () => (opts.now ? opts.now() : new Date()).toISOString();
  const maxAttempts = env.timing?.max_attempts ?? DEFAULT_MAX_ATTEMPTS;
  let lease: Lease | undefined;
  try {
    const pendingSeats = async () => {
      const all = await store.readSeats();
      for (const s of all) {
        if (isParked(s) && (s.pending ?? []).length > 0) {
          log(
            `${seatKey(s)}: parked since ${s.parked} after ${
              s.attempts ?? 0
            } failed attempt(s), not retried ` +
              `(${
                s.reason ?? "no reason recorded"
              }); a new order for the seat (e.g. wod order purge) clears it`,
          );
        }
      }
      const seats = all.filter((s) => (s.pending ?? []).length > 0 && !isParked(s));
      const byBackend = new Map<string, Seat[]>();
      for (const s of seats) byBackend.set(s.backend, [...(byBackend.get(s.backend) ?? []), s]);
      const plan = [...byBackend].map(([backend, list]) => ({
        backend,
        tasks: list.flatMap((s) =>
          s.pending!.map((p): SeatTask => {
            const t: SeatTask = {
              action: p.action,
              workshop: s.workshop ?? "",
              seat: s.seat,
              order: p.order,
            };
            if (s.mode) t.mode = s.mode;
            return t;
          })
        ),
      }));
      return { seats, plan };
    };
    let { seats, plan } = await pendingSeats();
    if (plan.length > 0 && !opts.dryRun && opts.lease !== false) {
      // One writer of seat actions per environment; what is pending is read again under the lease.
      lease = await acquireLease(store, { purpose: `apply ${opts.env}`, log, ...(opts.lease ?? {}) });
      ({ seats, plan } = await pendingSeats());
    }
    if (plan.length === 0) {
      log(`Nothing pending in ${opts.env}: no backend run, no commit`);
      return { plan, outcomes: [], committed: false };
    }
    for (const p of plan) {
      log(`${p.backend}: ${p.tasks.map((t) => `${t.action} ${t.seat}`).join(", ")}`);
    }
    if (opts.dryRun) return { plan, outcomes: [], committed: false };

    const run = opts.runSeatTasks ?? runSeatTasks;
    let front: FrontendClient | undefined;
    let frontErr: string | undefined;
    if (env.frontend) {
      try {
        front = FrontendClient.fromEnv(env.frontend, opts.getenv);
      } catch (err) {
        frontErr = (err as Error).message;
      }
    }
    const wantMail = env.mail?.send_credentials === true;
    const ident = wantMail ? (opts.identities ?? await identitiesFromEnv()) : [];
    const mail = wantMail ? mailer(env.mail!) : undefined;

    // Hub API per backend for starting servers after the credentials are out (undefined: the backend
    // run starts them).
    const hubs = new Map<string, Promise<HubClient | undefined>>();
    const hubFor = (b: EnvironmentBackend): Promise<HubClient | undefined> => {
      if (!hubs.has(b.name)) {
        const find = opts.hub ??
          (opts.runSeatTasks
            ? () => Promise.resolve(undefined)
            : (x: EnvironmentBackend) => defaultHub(x, opts.env, opts.getenv ?? ((k) => Deno.env.get(k))));
        hubs.set(
          b.name,
          find(b).catch((err) => {
            log(
              `${b.name}: hub API not usable from here, the backend run starts the servers: ${
                (err as Error).message.split("\n")[0]
              }`,
            );
            return undefined;
          }),
        );
      }
      return hubs.get(b.name)!;
    };

    const steps = new Map<string, Step[]>(seats.map((x) => [seatKey(x), []]));
    const outcomes: SeatOutcome[] = [];
    const runItems = async (backend: string, items: { seat: Seat; p: SeatPendingAction }[]) => {
      const b = env.backends.find((x) => x.name === backend);
      const fail = (seat: Seat, p: SeatPendingAction, reason: string) => {
        steps.get(seatKey(seat))!.push({ order: p.order, action: p.action, ok: false, reason });
        outcomes.push({ backend, seat: seat.seat, action: p.action, order: p.order, ok: false, reason });
      };
      // A seat the backend cannot take (unknown workshop, outside the pool) fails alone.
      const runnable = items.filter(({ seat, p }) => {
        if (!b) fail(seat, p, `backend "${backend}" is not in environments/${opts.env}.yaml`);
        else if (!seat.workshop || !cfg.workshops.has(seat.workshop)) {
          fail(seat, p, `unknown workshop "${seat.workshop ?? ""}" (no workshops/<id>/workshop.yaml)`);
        } else if (seat.seat < b.students[0] || seat.seat > b.students[1]) {
          fail(
            seat,
            p,
            `seat outside the student pool [${b.students[0]}, ${b.students[1]}] of backend ${backend}`,
          );
        } else return true;
        return false;
      });
      if (runnable.length === 0 || !b) return;
      const tasks = runnable.map(({ seat, p }): SeatTask => {
        const t: SeatTask = { action: p.action, workshop: seat.workshop!, seat: seat.seat, order: p.order };
        if (seat.mode) t.mode = seat.mode;
        return t;
      });
      const hub = tasks.some((t) => t.action === "CREATE") ? await hubFor(b) : undefined;
      let results: SeatResult[] = [];
      let runError: string | undefined;
      try {
        results = await run({
          root: opts.root,
          privateDir: opts.privateDir,
          env: opts.env,
          backend,
          tasks,
          log,
          startServers: hub === undefined,
        });
      } catch (err) {
        runError = (err as Error).message.split("\n").slice(0, 5).join(" ");
      }
      const secrets = results.map((r) => r.password).filter((x): x is string => !!x);
      // In GitHub Actions, hide every new password from the logs before anything can print it.
      for (const s of secrets) maskForActions(s);
      // Credentials go out a few at a time; one failed delivery does not hold back the others.
      const done = await mapLimit(runnable, DELIVERY_PARALLEL, async ({ seat, p }) => {
        const r = results.find((x) => x.seat === seat.seat && x.action === p.action);
        if (!r || !r.ok) {
          return {
            seat,
            p,
            reason: redactText(runError ?? r?.error ?? "no result from the backend run", secrets),
            // No seat result came back (host unreachable, playbook error): nothing is known about the
            // seat, it stays as recorded and the next apply runs the action again.
            hostLevel: runError !== undefined || !r || r.hostFailure === true,
          };
        }
        if (r.replayed) {
          log(
            `${
              seatKey(seat)
            }: ${p.action} of order ${p.order} had been applied already: home kept, new password`,
          );
        }
        const step: Step = { order: p.order, action: p.action, ok: true };
        if (r.completion !== undefined) step.completion = r.completion;
        const delivered: string[] = [];
        try {
          if (p.action === "CREATE") {
            if (!r.password) throw new WodError("the backend returned no password");
            await deliverCreate(seat, b, r.password, delivered);
          } else if (front) {
            // The front end hears of every action, as from the original backend: CLEANUP keeps a reset
            // workshop's student assigned until its RESET; RESET and PURGE free it with its new password.
            const dbStudentId = seat.seat + (b.base_stdid ?? 0);
            const heldForReset = cfg.workshops.get(seat.workshop ?? "")?.value.reset === true;
            const call = p.action === "CLEANUP"
              ? front.cleaned(dbStudentId, seat.customer, r.password, r.completion, { heldForReset })
              : p.action === "RESET"
              ? front.reset([{ dbStudentId, password: r.password }])
              : front.purged(dbStudentId, r.password);
            await call.then(
              () => delivered.push("frontend"),
              (err) =>
                log(`warning: ${seatKey(seat)}: ${p.action} not reported to the front end: ${err.message}`),
            );
          }
        } catch (err) {
          step.ok = false;
          step.reason = redactText(`credentials not delivered: ${(err as Error).message}`, secrets);
        }
        return { seat, p, step, delivered };
      });
      for (const { seat, p, reason, step, delivered, hostLevel } of done) {
        if (!step && hostLevel) {
          outcomes.push({ backend, seat: seat.seat, action: p.action, order: p.order, ok: false, reason });
          continue;
        }
        if (!step) {
          fail(seat, p, reason!);
          continue;
        }
        if (step.ok && p.action === "CREATE" && hub) deferredStarts.set(seatKey(seat), hub);
        steps.get(seatKey(seat))!.push(step);
        outcomes.push({
          backend,
          seat: seat.seat,
          action: p.action,
          order: p.order,
          ok: step.ok,
          reason: step.reason,
          delivered,
        });
      }
    };

    const deliverCreate = async (
      seat: Seat,
      b: EnvironmentBackend,
      password: string,
      delivered: string[],
    ) => {
      if (env.frontend) {
        if (!front) throw new WodError(frontErr ?? "front end not configured");
        await front.created(seat.seat + (b.base_stdid ?? 0), seat.customer, password);
        delivered.push("frontend");
      }
      if (wantMail && seat.email_sealed) {
        if (ident.length === 0) {
          throw new WodError(
            "the participant email is sealed and no identity is set (WOD_AGE_IDENTITY or WOD_AGE_IDENTITY_FILE)",
          );
        }
        const to = await unseal(seat.email_sealed, ident);
        const ws = cfg.workshops.get(seat.workshop ?? "");
        const duration = ws?.value.duration ?? 2;
        const msg = await renderTemplate("credentials", {
          WORKSHOP: seat.workshop ?? "",
          WORKSHOP_TITLE: ws?.value.title ?? seat.workshop ?? "",
          HUB_URL: await hubUrl(b),
          USERNAME: `student${seat.seat}`,
          PASSWORD: password,
          ENTRY: `${seat.workshop ?? ""}/${ws?.value.entry ?? "0-ReadMeFirst.ipynb"}`,
          EXPIRES: new Date(Date.now() + duration * 3_600_000).toISOString().slice(0, 16).replace("T", " "),
        });
        await mail!.send(to, msg);
        delivered.push("email");
      }
      if (delivered.length === 0) {
        log(`warning: ${seatKey(seat)}: no credential delivery configured (frontend or mail)`);
      }
    };

    // Seats created by this apply whose server the hub API starts after the commit.
    const deferredStarts = new Map<string, HubClient>();
    let runs = 0;
    try {
      // Round k runs the k-th pending action of every seat whose earlier actions succeeded. The backend
      // runs a run's tasks in parallel, so a seat never has two actions in the same run; the usual
      // case (one pending action per seat) is ONE run per backend.
      for (let round = 0;; round++) {
        const todo = new Map<string, { seat: Seat; p: SeatPendingAction }[]>();
        for (const seat of seats) {
          const done = steps.get(seatKey(seat))!;
          const p = seat.pending![round];
          if (!p || done.length !== round || done.some((x) => !x.ok)) continue;
          todo.set(seat.backend, [...(todo.get(seat.backend) ?? []), { seat, p }]);
        }
        if (todo.size === 0) break;
        await Promise.all([...todo].map(async ([backend, items]) => {
          runs++;
          await runItems(backend, items);
        }));
      }
    } finally {
      mail?.close();
    }

    const committed = await store.updateSeats(
      `apply ${opts.env}: ${
        outcomes.map((o) => `${o.action} ${o.backend}/${o.seat} ${o.ok ? "ok" : "failed"}`).join(", ")
      }`
        .slice(0, 500),
      (current) => {
        const out: Seat[] = [];
        for (const [key, done] of steps) {
          let s: Seat | undefined = current.get(key);
          if (!s) continue;
          let changed = false;
          for (const st of done) {
            // Only where the seat still waits for this very order (a newer order may have replaced it).
            if (s.pending?.[0]?.order !== st.order || s.pending[0].action !== st.action) break;
            const ws: Workshop | undefined = cfg.workshops.get(s.workshop ?? "")?.value;
            const ctx: ResultContext = {
              now: now(),
              durationHours: ws?.duration ?? 2,
              resetPolicy: ws?.reset ?? false,
            };
            s = st.ok
              ? succeeded(s, st.action, ctx, st.completion)
              : failed(s, st.action, st.reason ?? "failed", ctx.now, maxAttempts);
            changed = true;
            if (!st.ok) break;
          }
          if (changed) out.push(s);
        }
        return out;
      },
    );
    for (const o of outcomes) {
      log(
        `${o.backend}/${o.seat} ${o.action} ${o.ok ? "ok" : `failed: ${o.reason}`}${
          o.delivered?.length ? ` (delivered: ${o.delivered.join(", ")})` : ""
        }`,
      );
    }
    await startServers(seats, steps, deferredStarts, log);
    if (lease?.lost) log(`warning: ${lease.lost}`);
    return { plan, outcomes, committed, runs };
  } finally {
    await lease?.release();
    if (!opts.store) await store.close();
  }
}

/**
 * Starts, through the hub API, the servers of the seats whose last action in this apply was a
 * successful CREATE (a seat created then cleaned up in the same apply gets no server). Does not wait
 * for the servers to be ready; a failed start is logged, not a seat failure: the hub spawns the
 * server when the student logs in.
 */
async function startServers(
  seats: Seat[],
  steps: Map<string, Step[]>,
  deferred: Map<string, HubClient>,
  log: (line: string) => void,
): Promise<void> {
  const todo = seats.filter((s) => {
    const done = steps.get(seatKey(s)) ?? [];
    return deferred.has(seatKey(s)) && done.length > 0 && done.every((x) => x.ok) &&
      done[done.length - 1].action === "CREATE";
  });
  if (todo.length === 0) return;
  const t0 = performance.now();
  const failures = (await mapLimit(todo, DELIVERY_PARALLEL, async (s) => {
    try {
      await deferred.get(seatKey(s))!.requestServerStart(`student${s.seat}`);
      return 0;
    } catch (err) {
      log(
        `warning: ${seatKey(s)}: hub server not started (the hub starts it at login): ${
          (err as Error).message.split("\n")[0]
        }`,
      );
      return 1;
    }
  })).reduce((a: number, b) => a + b, 0);
  log(
    `hub servers of ${todo.length} new seat(s) started${failures ? ` (${failures} failed)` : ""} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}
