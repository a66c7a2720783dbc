// What an order is, in one place: the `Order` type (generated from schemas/order.schema.json), the one
// list of actions, and the one seat-range syntax with its one limit. Every order entry (SMTP listener,
// `wod order`, the portal, order.yml) and `wod seats` parse seats here; scripts/orders/validate.ts checks
// a whole order against the configuration.
import { UsageError } from "../common/errors.ts";
import type { Order } from "../config/types.gen.ts";

export type { Order };

/** The order actions, in the schema's order (schemas/order.schema.json `action`). */
export const ACTIONS = ["CREATE", "CLEANUP", "RESET", "PURGE"] as const satisfies readonly Order["action"][];
export type Action = typeof ACTIONS[number];

export function isAction(v: unknown): v is Action {
  return (ACTIONS as readonly unknown[]).includes(v);
}

/**
 * The largest seat number: six digits. This is the one limit of seat-range parsing, for three reasons.
 * (1) It is the limit of the order formats themselves (the original subject `CREATE <seat> ...` and the
 * signed JSON body), so every entry accepts the same numbers. (2) A cap on the NUMBER of seats in a range
 * (200 in the old workflow script, 10000 in `wod seats`) is not a property of the syntax: how many seats
 * one order may touch is bounded by the configuration, since validateOrder keeps the whole range inside
 * the workshop's range and the backend's student pool (about 100 seats per backend; the largest
 * workshop range of the original corpus is 55). A fixed count could only be redundant or refuse a
 * legitimate RESET of a whole workshop range. (3) Six digits keep every number a safe integer and every
 * range small enough to expand (`wod seats` checks the pool before it expands).
 */
export const MAX_SEAT = 999_999;

/** A seat number in an order email's subject: decimal, no sign, no leading zero, at most six digits. */
export const SEAT_PATTERN = "(?:0|[1-9][0-9]{0,5})";
/** A seat or range as people type it (CLI flags, workflow inputs): leading zeros allowed. */
const SEATS_RE = /^([0-9]{1,6})(?:-([0-9]{1,6}))?$/;

export function isSeatNumber(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_SEAT;
}

/**
 * Why `seats` is not a seat range for `action`, or undefined: [first, last] seat numbers (0..MAX_SEAT),
 * first <= last, and a range (first < last) only for RESET. The one range rule (the workshop's range and
 * the backend's pool are checked by validateOrder, which has the configuration).
 */
export function seatRangeProblem(seats: unknown, action?: string): string | undefined {
  if (!Array.isArray(seats) || seats.length !== 2 || !seats.every(isSeatNumber)) {
    return `Invalid seats ${show(seats)}: expected [first, last], seat numbers from 0 to ${MAX_SEAT}`;
  }
  const [first, last] = seats as [number, number];
  if (first > last) return `Invalid seat range ${first},${last}: the first seat is after the last`;
  if (action !== undefined && action !== "RESET" && first !== last) {
    return `${action} takes one seat, got the range ${first},${last} (only RESET takes a range)`;
  }
  return undefined;
}

/**
 * Parse a seat or a range as people type it: "N" or "N-M" (`wod order --seat`, `wod seats --seats`,
 * order.yml's seat input). `action` given: only RESET may take a range. Throws a UsageError naming `what`
 * (the flag or input the text came from).
 */
export function parseSeats(text: string, opts: { action?: string; what?: string } = {}): [number, number] {
  const what = opts.what ?? "seat";
  const m = SEATS_RE.exec(text.trim());
  if (!m) {
    throw new UsageError(
      `Invalid ${what} "${
        show(text)
      }": expected a seat number N or a range N-M (numbers from 0 to ${MAX_SEAT})`,
    );
  }
  const seats: [number, number] = [Number(m[1]), m[2] === undefined ? Number(m[1]) : Number(m[2])];
  if (seats[0] > seats[1]) {
    throw new UsageError(`Invalid ${what} "${show(text)}": the first seat is after the last`);
  }
  const problem = seatRangeProblem(seats, opts.action);
  if (problem) throw new UsageError(`Invalid ${what} "${show(text)}": ${problem}`);
  return seats;
}

/** "7" for one seat, "3-9" for a range (the text parseSeats reads back). */
export function formatSeats(seats: readonly [number, number]): string {
  return seats[0] === seats[1] ? String(seats[0]) : `${seats[0]}-${seats[1]}`;
}

/** Every seat number of a range, in order. */
export function seatList(seats: readonly [number, number]): number[] {
  return Array.from({ length: seats[1] - seats[0] + 1 }, (_, i) => seats[0] + i);
}

/** A value shown in a message: printable ASCII only (logs, SMTP replies), at most 80 characters. */
export function show(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  const clean = String(s).replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
