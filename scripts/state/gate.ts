// The seat check before the 250 (issue 17 item 5): the original front end never reads a reply after
// the greeting, and an order refused only when the drain records it (ledger outcome "rejected") is a
// surprise to everyone. `SeatGate` answers, before the listener spools an order, whether the seat's
// recorded state would refuse it, with the state machine's own reason: who holds the seat, what it
// waits for. The state is the store's, read at most once per `ttlMs`, with the orders this listener
// accepted since then applied on top (the drain records them a moment later). The drain still checks
// again when it records (the gate is an early answer, not the only guard): a race with apply or with
// another listener is caught there, in the ledger.
import type { Order, Seat } from "../config/types.gen.ts";
import { freeSeat, transition, TransitionError } from "./machine.ts";

/** Accepted orders kept in the overlay at most this long (the drain records them within seconds). */
const OVERLAY_MS = 10 * 60_000;

export class SeatGate {
  #cache?: { at: number; seats: Map<string, Seat> };
  #reading?: Promise<Map<string, Seat>>;
  #accepted: { order: Order; at: number }[] = [];

  constructor(
    private readonly readSeats: () => Promise<Seat[]>,
    private readonly ttlMs = 1_000,
  ) {}

  async #seats(): Promise<Map<string, Seat>> {
    const now = Date.now();
    if (this.#cache && now - this.#cache.at < this.ttlMs) return this.#cache.seats;
    this.#reading ??= this.readSeats().then((list) => {
      const seats = new Map(list.map((s) => [`${s.backend}/${s.seat}`, s]));
      this.#cache = { at: now, seats };
      return seats;
    }).finally(() => {
      this.#reading = undefined;
    });
    return await this.#reading;
  }

  /** The seat as recorded, with the orders accepted here and not yet in it applied on top. */
  #project(recorded: Seat | undefined, backend: string, n: number): Seat {
    let seat = recorded ?? freeSeat(backend, n);
    const now = new Date().toISOString();
    for (const { order } of this.#accepted) {
      if (order.backend !== backend || n < order.seats[0] || n > order.seats[1]) continue;
      if (seat.orders.includes(order.id)) continue;
      try {
        seat = transition(seat, order, { now });
      } catch (err) {
        if (!(err instanceof TransitionError)) throw err;
      }
    }
    return seat;
  }

  /**
   * Why the recorded state refuses `order` (the state machine's reason for its first refused seat), or
   * undefined, in which case the order is admitted: later checks see it (call `withdraw` if it is not
   * spooled after all). After the read, the check and the admission run without a pause, so orders
   * checked at the same time are checked in their order of arrival, each seeing the ones before it
   * (the original front end sends CLEANUP, RESET and PURGE back to back). Throws when the state cannot be
   * read (the caller decides: the drain checks again).
   */
  async admit(order: Order): Promise<string | undefined> {
    const seats = await this.#seats();
    const cut = Date.now() - OVERLAY_MS;
    this.#accepted = this.#accepted.filter((x) => x.at >= cut);
    for (let n = order.seats[0]; n <= order.seats[1]; n++) {
      const seat = this.#project(seats.get(`${order.backend}/${n}`), order.backend, n);
      try {
        transition(seat, order, { now: new Date().toISOString() });
      } catch (err) {
        if (err instanceof TransitionError) return err.message;
        throw err;
      }
    }
    this.accepted(order);
    return undefined;
  }

  /** `order` was accepted (spooled): later checks see it before the drain records it. */
  accepted(order: Order): void {
    this.#accepted.push({ order, at: Date.now() });
  }

  /** `order` was admitted but not spooled (a local error): forget it. */
  withdraw(order: Order): void {
    this.#accepted = this.#accepted.filter((x) => x.order.id !== order.id);
  }
}
