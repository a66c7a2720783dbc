// Plan: which seats have pending actions, grouped per backend, and which of them a backend can take
// at all (a known workshop, a seat inside the backend's pool). Reads recorded state; changes nothing.
import type { Config } from "../config/load.ts";
import type { Environment, EnvironmentBackend, Seat, SeatPendingAction } from "../config/types.gen.ts";
import { seatKey, type StateStore } from "../state/store.ts";
import { isParked } from "../state/machine.ts";
import type { SeatTask } from "../backend/seats.ts";

/** One pending action of one seat. */
export interface PlanItem {
  seat: Seat;
  p: SeatPendingAction;
}

export interface Plan {
  /** Every recorded seat, as read. */
  all: Seat[];
  /** Seats with pending actions that are not parked. */
  seats: Seat[];
  /** Tasks per backend (what was, or with --dry-run would be, run). */
  plan: { backend: string; tasks: SeatTask[] }[];
}

/** The backend task for one pending action of a seat. */
export function seatTask(seat: Seat, p: SeatPendingAction): SeatTask {
  const t: SeatTask = { action: p.action, workshop: seat.workshop ?? "", seat: seat.seat, order: p.order };
  if (seat.mode) t.mode = seat.mode;
  return t;
}

/** Seats with pending actions, grouped per backend; parked seats are named in the log and left out. */
export async function planPending(store: StateStore, log: (line: string) => void): Promise<Plan> {
  const all = await store.readSeats();
  for (const s of all) {
    if (isParked(s) && (s.pending ?? []).length > 0) {
      log(
        `${seatKey(s)}: parked since ${s.parked} after ${s.attempts ?? 0} failed attempt(s), not retried ` +
          `(${s.reason ?? "no reason recorded"}); a new order for the seat (e.g. wod order purge) clears it`,
      );
    }
  }
  const seats = all.filter((s) => (s.pending ?? []).length > 0 && !isParked(s));
  const byBackend = new Map<string, Seat[]>();
  for (const s of seats) byBackend.set(s.backend, [...(byBackend.get(s.backend) ?? []), s]);
  const plan = [...byBackend].map(([backend, list]) => ({
    backend,
    tasks: list.flatMap((s) => s.pending!.map((p) => seatTask(s, p))),
  }));
  return { all, seats, plan };
}

/**
 * Round `round` of a plan: the round-th pending action of every seat whose earlier actions all
 * succeeded, per backend. A backend runs a run's tasks in parallel, so a seat never has two actions in
 * the same run; the usual case (one pending action per seat) is one round.
 */
export function roundItems(
  seats: Seat[],
  done: (seat: Seat) => { ok: boolean }[],
  round: number,
): Map<string, PlanItem[]> {
  const todo = new Map<string, PlanItem[]>();
  for (const seat of seats) {
    const steps = done(seat);
    const p = seat.pending![round];
    if (!p || steps.length !== round || steps.some((x) => !x.ok)) continue;
    todo.set(seat.backend, [...(todo.get(seat.backend) ?? []), { seat, p }]);
  }
  return todo;
}

/**
 * Why a backend cannot take this item (unknown backend or workshop, seat outside the pool), or
 * undefined when it can. Such a seat fails alone; the others run.
 */
export function unrunnableReason(
  cfg: Config,
  envName: string,
  env: Environment,
  backend: string,
  item: PlanItem,
): string | undefined {
  const b: EnvironmentBackend | undefined = env.backends.find((x) => x.name === backend);
  const { seat } = item;
  if (!b) return `backend "${backend}" is not in environments/${envName}.yaml`;
  if (!seat.workshop || !cfg.workshops.has(seat.workshop)) {
    return `unknown workshop "${seat.workshop ?? ""}" (no workshops/<id>/workshop.yaml)`;
  }
  if (seat.seat < b.students[0] || seat.seat > b.students[1]) {
    return `seat outside the student pool [${b.students[0]}, ${b.students[1]}] of backend ${backend}`;
  }
  return undefined;
}
