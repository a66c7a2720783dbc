// The seat state machine: how an order changes a seat's recorded state, and how an applied seat
// action's result changes it again. Pure functions over the generated `Seat` type; illegal
// transitions throw TransitionError with a message naming the seat, its holder and what is expected.
import type { Order, Seat, SeatNotice, SeatPendingAction } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";

export type SeatStatus = Seat["status"];
export type SeatAction = Order["action"];

/** Ids kept per seat (the full ledger is state/<env>/orders/). */
export const MAX_SEAT_ORDERS = 20;

export class TransitionError extends WodError {
  constructor(message: string) {
    super(message);
    this.name = "TransitionError";
  }
}

export function freeSeat(backend: string, seat: number): Seat {
  return { backend, seat, status: "free", orders: [] };
}

export function seatName(s: { backend: string; seat: number }): string {
  return `${s.backend}/${s.seat}`;
}

function holder(s: Seat): string {
  const parts = [`status ${s.status}`];
  if (s.workshop) parts.push(`workshop ${s.workshop}`);
  const last = s.orders.at(-1);
  if (last) parts.push(`order ${last}`);
  return parts.join(", ");
}

function withOrder(s: Seat, id: string): string[] {
  return [...s.orders.filter((o) => o !== id), id].slice(-MAX_SEAT_ORDERS);
}

/** Clears everything that belongs to the participant who held the seat. */
function cleared(s: Seat): Seat {
  const out: Seat = { ...s };
  delete out.customer;
  delete out.email_sealed;
  delete out.allocated;
  delete out.expires;
  delete out.reminded;
  delete out.reason;
  delete out.attempts;
  delete out.parked;
  return out;
}

/** Orders from a front end (mail, dispatch): the front end hears of them through its callbacks. */
const FRONT_END_SOURCES = new Set<string>(["mail", "dispatch"]);

/** Notices kept per seat (apply delivers and clears them). */
export const MAX_SEAT_NOTICES = 20;

/**
 * Why `order` has nothing left to do on `seat`, or undefined. A CLEANUP of a seat that is already
 * cleaned up (free, or held for its RESET) is a success, not a refusal: both sides expire a seat, a few
 * seconds apart, and the second CLEANUP must still complete the front end's customer. (RESET and PURGE
 * of a free seat run again: they are idempotent on the backend and end with the same callback.)
 */
export function alreadyDone(seat: Seat, order: Order): string | undefined {
  if (order.action !== "CLEANUP") return undefined;
  if (seat.status !== "free" && seat.status !== "held-for-reset") return undefined;
  return `CLEANUP on seat ${seatName(seat)}: already done (the seat is ${
    seat.status === "free" ? "free" : "cleaned up and waits for its RESET"
  }); the final callback is sent again`;
}

/**
 * The seat with a front-end notice for `order` (outcome "done": re-send the final callback;
 * "refused": tell the front end the order cannot be carried out). Only orders from a front end.
 */
export function withNotice(seat: Seat, order: Order, outcome: SeatNotice["outcome"], now: string): Seat {
  if (!FRONT_END_SOURCES.has(order.source)) return seat;
  const n: SeatNotice = { action: order.action, order: order.id, outcome, since: now };
  if (order.customer !== undefined) n.customer = order.customer;
  const notices = [...(seat.notices ?? []).filter((x) => x.order !== order.id), n].slice(-MAX_SEAT_NOTICES);
  return { ...seat, notices };
}

export interface OrderContext {
  now: string;
  /** The order's email, sealed for the record (undefined: none kept). */
  emailSealed?: string;
}

/** Throws why CREATE is illegal on `seat` (held by another customer, being cleaned, other workshop). */
function refuseCreate(seat: Seat, order: Order, name: string): void {
  if (seat.status !== "free" && seat.customer !== undefined && seat.customer !== order.customer) {
    throw new TransitionError(
      `CREATE on seat ${name} for customer ${
        order.customer ?? "(none)"
      } refused: the seat is held by customer ${seat.customer} (${
        holder(seat)
      }); expected a free seat (CLEANUP it first)`,
    );
  }
  if (seat.status === "held-for-reset" || seat.status === "cleaning") {
    throw new TransitionError(
      `CREATE on seat ${name} refused: the seat is ${
        seat.status === "cleaning" ? "being cleaned up" : "waiting for a RESET"
      } (${holder(seat)}); expected a free seat`,
    );
  }
  if (seat.status !== "free" && seat.workshop !== order.workshop) {
    throw new TransitionError(
      `CREATE on seat ${name} for workshop ${order.workshop} refused: the seat holds workshop ${seat.workshop} (${
        holder(seat)
      })`,
    );
  }
}

/** The seat cleaning with `pending` actions queued, its failed attempts forgotten (a fresh start). */
function queued(base: Seat, workshop: string, pending: SeatPendingAction[]): Seat {
  const out: Seat = { ...base, status: "cleaning", workshop, pending };
  delete out.attempts;
  return out;
}

/**
 * The seat after `order`. Throws TransitionError when the order is illegal in the seat's status.
 * The caller checks idempotency (an order id already recorded is a duplicate, not a transition).
 */
export function transition(seat: Seat, order: Order, ctx: OrderContext): Seat {
  const name = seatName(seat);
  const pend = (action: SeatAction, extra: Partial<SeatPendingAction> = {}): SeatPendingAction => ({
    action,
    order: order.id,
    since: ctx.now,
    ...extra,
  });
  const otherCustomer = order.customer !== undefined && seat.customer !== undefined &&
    seat.customer !== order.customer && order.source !== "expire" && order.source !== "drift";
  // A new order for the seat is the operator's (or the front end's) answer to a parked seat.
  const base: Seat = { ...seat, orders: withOrder(seat, order.id), updated: ctx.now };
  delete base.parked;

  switch (order.action) {
    case "CREATE": {
      refuseCreate(seat, order, name);
      const out: Seat = {
        ...cleared(base),
        status: "provisioning",
        workshop: order.workshop,
        pending: [pend("CREATE", { deliver: true })],
      };
      delete out.mode;
      delete out.completion;
      if (order.mode) out.mode = order.mode;
      if (order.customer !== undefined) out.customer = order.customer;
      if (ctx.emailSealed) out.email_sealed = ctx.emailSealed;
      return out;
    }
    case "CLEANUP": {
      if (alreadyDone(seat, order)) return withNotice(base, order, "done", ctx.now);
      if (otherCustomer) {
        throw new TransitionError(
          `CLEANUP on seat ${name} for customer ${order.customer} refused: the seat is held by customer ${seat.customer} (${
            holder(seat)
          })`,
        );
      }
      const pending = seat.pending ?? [];
      if (seat.status === "cleaning" && pending.some((p) => p.action === "CLEANUP")) {
        return base; // already on its way
      }
      const out: Seat = { ...base, status: "cleaning", pending: [pend("CLEANUP")] };
      if (order.reason) out.reason = order.reason.slice(0, 1000);
      else delete out.reason;
      delete out.attempts;
      return out;
    }
    case "RESET": {
      if (seat.status === "provisioning" || seat.status === "active") {
        throw new TransitionError(
          `RESET on seat ${name} refused: the seat is held${
            seat.customer ? ` by customer ${seat.customer}` : ""
          } (${holder(seat)}); expected a free or held-for-reset seat (CLEANUP it first)`,
        );
      }
      if (otherCustomer && seat.status !== "held-for-reset") {
        throw new TransitionError(
          `RESET on seat ${name} for customer ${order.customer} refused: the seat belongs to customer ${seat.customer}`,
        );
      }
      const pending = seat.pending ?? [];
      if (pending.some((p) => p.action === "RESET")) return base;
      return queued(base, seat.workshop ?? order.workshop, [...pending, pend("RESET")]);
    }
    case "PURGE": {
      if (otherCustomer) {
        throw new TransitionError(
          `PURGE on seat ${name} for customer ${order.customer} refused: the seat is held by customer ${seat.customer}`,
        );
      }
      const pending = (seat.pending ?? []).filter((p) =>
        p.action === "CLEANUP" && seat.status === "cleaning"
      );
      if ((seat.pending ?? []).some((p) => p.action === "PURGE")) return base;
      return queued(base, seat.workshop ?? order.workshop, [...pending, pend("PURGE")]);
    }
  }
}

export interface ResultContext {
  now: string;
  /** Workshop duration in hours (CREATE sets `expires`). */
  durationHours: number;
  /** Workshop policy: after CLEANUP the seat waits for a RESET. */
  resetPolicy: boolean;
}

/** The seat after apply ran its first pending action successfully. */
export function succeeded(seat: Seat, action: SeatAction, ctx: ResultContext, completion?: number): Seat {
  const pending = [...(seat.pending ?? [])];
  if (pending[0]?.action === action) pending.shift();
  let out: Seat = { ...seat, applied: ctx.now, updated: ctx.now, pending };
  delete out.reason;
  delete out.attempts;
  delete out.parked;
  switch (action) {
    case "CREATE":
      out.status = "active";
      out.allocated = ctx.now;
      out.activity = ctx.now;
      out.expires = new Date(Date.parse(ctx.now) + ctx.durationHours * 3_600_000).toISOString();
      delete out.reminded;
      break;
    case "CLEANUP":
      if (completion !== undefined) out.completion = completion;
      if (ctx.resetPolicy && !pending.some((p) => p.action === "RESET" || p.action === "PURGE")) {
        out = { ...cleared(out), status: "held-for-reset" };
        out.pending = pending;
      } else {
        out = { ...cleared(out), status: "free" };
        out.pending = pending;
      }
      break;
    case "RESET":
      out = { ...cleared(out), status: "free", activity: ctx.now };
      out.pending = pending;
      break;
    case "PURGE":
      out = { ...cleared(out), status: "free" };
      out.pending = pending;
      break;
  }
  if (pending.length > 0) out.status = pending[0].action === "CREATE" ? "provisioning" : "cleaning";
  if (out.pending && out.pending.length === 0) delete out.pending;
  return out;
}

/** Consecutive failures of a seat's action after which apply stops retrying it (timing.max_attempts). */
export const DEFAULT_MAX_ATTEMPTS = 3;

/**
 * The seat after apply's action failed: kept pending (retried by the next apply), reason recorded.
 * After `maxAttempts` failures in a row the seat is parked: apply leaves it alone until an operator
 * acts (any new order for the seat, e.g. `wod order purge`, clears it; `wod drift` lists it).
 */
export function failed(
  seat: Seat,
  action: SeatAction,
  reason: string,
  now: string,
  maxAttempts = DEFAULT_MAX_ATTEMPTS,
): Seat {
  const attempts = (seat.attempts ?? 0) + 1;
  const out: Seat = {
    ...seat,
    status: "failed",
    reason: `${action} failed: ${reason}`.slice(0, 1000),
    attempts,
    applied: now,
    updated: now,
  };
  if (attempts >= maxAttempts) out.parked = now;
  return out;
}

/** True when apply must leave the seat to an operator (parked after repeated failures). */
export function isParked(seat: Seat): boolean {
  return seat.parked !== undefined;
}
