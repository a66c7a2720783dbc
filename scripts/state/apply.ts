// Apply: make the backends match recorded state. Reads the seats with pending actions, runs the
// seat-action playbook ONCE per backend for all of them (scripts/backend/seats.ts runSeatTasks),
// delivers credentials (front-end API and/or participant email), then commits what happened in one
// commit: active / free / held-for-reset, or failed with the reason (kept pending, retried by the
// next apply). One failing seat does not hold back the others. Nothing pending: no run, no commit.
import type { Config } from "../config/load.ts";
import { loadConfig } from "../config/load.ts";
import type { EnvironmentBackend, Seat, SeatPendingAction, Workshop } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { redactText } from "../common/exec.ts";
import { openStore, seatKey, type StateStore } from "./store.ts";
import { failed, type ResultContext, type SeatAction, succeeded } from "./machine.ts";
import { identitiesFromEnv, unseal } from "./seal.ts";
import { FrontendClient } from "../notify/frontend.ts";
import { mailer, renderTemplate } from "../notify/email.ts";
import { maskForActions } from "../workflows/mask.ts";
import { runSeatTasks, type SeatResult, type SeatTask } from "../backend/seats.ts";

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

/** Where the participant logs in (for the credentials email). */
async function hubUrl(b: EnvironmentBackend): Promise<string> {
  if (b.hub_url) return b.hub_url;
  if (b.sandbox) {
    const { sandboxStatus } = await import("../backend/sandbox.ts");
    const s = await sandboxStatus();
    if (s) return s.hub_url;
  }
  return `http://${b.fqdn ?? b.host ?? "localhost"}:8000`;
}

export async function apply(opts: ApplyOptions): Promise<ApplyReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const cfg = opts.config ?? await loadConfig(opts.root, { privateDir: opts.privateDir });
  const envEntry = cfg.environments.get(opts.env);
  if (!envEntry) throw new WodError(`Unknown environment "${opts.env}"`);
  const env = envEntry.value;
  const store = opts.store ??
    await openStore(opts.root, opts.env, { config: cfg, privateDir: opts.privateDir });
  const now = () => (opts.now ? opts.now() : new Date()).toISOString();
  try {
    const seats = (await store.readSeats()).filter((s) => (s.pending ?? []).length > 0);
    const byBackend = new Map<string, Seat[]>();
    for (const s of seats) byBackend.set(s.backend, [...(byBackend.get(s.backend) ?? []), s]);
    const plan = [...byBackend].map(([backend, list]) => ({
      backend,
      tasks: list.flatMap((s) =>
        s.pending!.map((p): SeatTask => {
          const t: SeatTask = { action: p.action, workshop: s.workshop ?? "", seat: s.seat };
          if (s.mode) t.mode = s.mode;
          return t;
        })
      ),
    }));
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
        const t: SeatTask = { action: p.action, workshop: seat.workshop!, seat: seat.seat };
        if (seat.mode) t.mode = seat.mode;
        return t;
      });
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
        });
      } catch (err) {
        runError = (err as Error).message.split("\n").slice(0, 5).join(" ");
      }
      const secrets = results.map((r) => r.password).filter((x): x is string => !!x);
      // In GitHub Actions, hide every new password from the logs before anything can print it.
      for (const s of secrets) maskForActions(s);
      for (const { seat, p } of runnable) {
        const r = results.find((x) => x.seat === seat.seat && x.action === p.action);
        if (!r || !r.ok) {
          fail(seat, p, redactText(runError ?? r?.error ?? "no result from the backend run", secrets));
          continue;
        }
        const step: Step = { order: p.order, action: p.action, ok: true };
        if (r.completion !== undefined) step.completion = r.completion;
        const delivered: string[] = [];
        try {
          if (p.action === "CREATE") {
            if (!r.password) throw new WodError("the backend returned no password");
            await deliverCreate(seat, b, r.password, delivered);
          } else if (p.action === "CLEANUP" && front) {
            await front.cleaned(seat.seat + (b.base_stdid ?? 0), seat.customer, r.password, r.completion)
              .then(
                () => delivered.push("frontend"),
                (err) => log(`warning: ${seatKey(seat)}: ${err.message}`),
              );
          }
        } catch (err) {
          step.ok = false;
          step.reason = redactText(`credentials not delivered: ${(err as Error).message}`, secrets);
        }
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
              : failed(s, st.action, st.reason ?? "failed", ctx.now);
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
    return { plan, outcomes, committed, runs };
  } finally {
    if (!opts.store) await store.close();
  }
}
