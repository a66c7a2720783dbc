// Front-end notices (issue 17 items 5 and 6): orders that changed nothing on a seat still owe the
// original front end (wod-api-db) a callback, because it never reads the SMTP reply and learns only
// through its REST API. The state machine leaves a notice on the seat (scripts/state/machine.ts
// withNotice); apply calls `deliverNotices` once per run, which sends what the front end understands
// and clears the notices it delivered (a failed call is kept and tried again by the next apply).
//
//   done CLEANUP (the seat was already cleaned up, e.g. our expiry ran first): the final CLEANUP
//     callback again: the customer inactive and cleaned, the student assigned only while the seat is
//     still held (waiting for its RESET, or given to someone else since), else free.
//   refused CREATE (the seat is held: occupied, or waiting for its RESET): the student assigned, so the
//     front end stops handing it out. The original has no call that ends a registration, so its
//     customer ends through the front end's own timeout (the "deployment issue" mail after 10 minutes).
//   refused CLEANUP, RESET or PURGE (the seat is held by another customer): the order's customer ends
//     (inactive, cleaned) so its row completes, and the student stays assigned to the holder. The
//     holder's seat is left alone.
import type { Config } from "../config/load.ts";
import type { Seat, SeatNotice } from "../config/types.gen.ts";
import { FrontendClient } from "./frontend.ts";

function key(s: { backend: string; seat: number }): string {
  return `${s.backend}/${s.seat}`;
}

/** The front-end calls for one notice, in order (pure; `seat` is the seat as recorded now). */
export function noticeCalls(seat: Seat, n: SeatNotice, dbStudentId: number): {
  what: string;
  run: (front: FrontendClient) => Promise<void>;
}[] {
  const held = seat.status !== "free";
  const calls: { what: string; run: (front: FrontendClient) => Promise<void> }[] = [];
  if (n.outcome === "done") {
    if (n.action === "CLEANUP") {
      calls.push({
        what: `customer cleaned, student ${held ? "kept assigned" : "free"}`,
        run: (f) => f.cleaned(dbStudentId, n.customer, undefined, undefined, { heldForReset: held }),
      });
    } else if (n.action === "RESET" || n.action === "PURGE") {
      if (!held) calls.push({ what: "student free", run: (f) => f.purged(dbStudentId, undefined) });
    }
    return calls;
  }
  if (n.action !== "CREATE" && n.customer !== undefined && n.customer !== seat.customer) {
    const customer = n.customer;
    calls.push({ what: "customer ended", run: (f) => f.customerEnded(customer) });
  }
  if (held) {
    calls.push({
      what: "student assigned (the seat is held)",
      run: (f) => f.studentHeld(dbStudentId),
    });
  }
  return calls;
}

/** The part of the state store (scripts/state/store.ts) this needs. */
export interface NoticeStore {
  readSeats(): Promise<Seat[]>;
  updateSeats(message: string, fn: (seats: Map<string, Seat>) => Seat[] | undefined): Promise<boolean>;
}

export interface DeliverNoticesOptions {
  store: NoticeStore;
  cfg: Config;
  env: string;
  getenv?: (name: string) => string | undefined;
  log: (line: string) => void;
  /** A client to use (default: from the environment's frontend section). */
  front?: FrontendClient;
}

/** Sends every seat's notices to the front end and clears those delivered. Never throws. */
export async function deliverNotices(opts: DeliverNoticesOptions): Promise<{ sent: number; kept: number }> {
  const { log } = opts;
  try {
    const seats = (await opts.store.readSeats()).filter((s) => (s.notices ?? []).length > 0);
    if (seats.length === 0) return { sent: 0, kept: 0 };
    const env = opts.cfg.environments.get(opts.env)?.value;
    const delivered = new Map<string, Set<string>>();
    let kept = 0;
    if (!env?.frontend) {
      // Nobody to tell: the notices are dropped.
      for (const s of seats) delivered.set(key(s), new Set(s.notices!.map((n) => n.order)));
      log(`${seats.length} seat(s) had front-end notices but ${opts.env} has no frontend: dropped`);
    } else {
      let front = opts.front;
      if (!front) {
        try {
          front = FrontendClient.fromEnv(env.frontend, opts.getenv);
        } catch (err) {
          log(`warning: front-end notices not sent (kept for the next apply): ${(err as Error).message}`);
          return { sent: 0, kept: seats.reduce((n, s) => n + s.notices!.length, 0) };
        }
      }
      for (const s of seats) {
        const b = env.backends.find((x) => x.name === s.backend);
        const done = new Set<string>();
        for (const n of s.notices!) {
          const calls = b ? noticeCalls(s, n, s.seat + (b.base_stdid ?? 0)) : [];
          try {
            for (const c of calls) await c.run(front);
            done.add(n.order);
            log(
              `${key(s)}: ${n.action} of order ${n.order} (${n.outcome}) reported to the front end${
                calls.length ? `: ${calls.map((c) => c.what).join(", ")}` : ": nothing to send"
              }`,
            );
          } catch (err) {
            kept++;
            log(
              `warning: ${
                key(s)
              }: ${n.action} of order ${n.order} (${n.outcome}) not reported to the front end, kept for the next apply: ${
                (err as Error).message
              }`,
            );
          }
        }
        delivered.set(key(s), done);
      }
    }
    let sent = 0;
    await opts.store.updateSeats(
      `front-end notices ${opts.env}: ${seats.map(key).join(", ")}`.slice(0, 300),
      (cur) => {
        const out: Seat[] = [];
        sent = 0;
        for (const [k, orders] of delivered) {
          const s = cur.get(k);
          if (!s?.notices || orders.size === 0) continue;
          const rest = s.notices.filter((n) => !orders.has(n.order));
          sent += s.notices.length - rest.length;
          const next: Seat = { ...s };
          if (rest.length) next.notices = rest;
          else delete next.notices;
          out.push(next);
        }
        return out;
      },
    );
    return { sent, kept };
  } catch (err) {
    log(`warning: front-end notices not sent (kept for the next apply): ${(err as Error).message}`);
    return { sent: 0, kept: 0 };
  }
}
