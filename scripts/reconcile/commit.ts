// Commit: the outcome of an apply in ONE commit on the state store. Each seat moves through the seat
// machine (state/machine.ts) for every step it took, but only while it still waits for that very
// order (a newer order recorded meanwhile is left for the next apply).
import type { Config } from "../config/load.ts";
import type { Seat, Workshop } from "../config/types.gen.ts";
import type { StateStore } from "../state/store.ts";
import { failed, type ResultContext, type SeatAction, succeeded } from "../state/machine.ts";

/** What one seat action came to. */
export interface Step {
  order: string;
  action: SeatAction;
  ok: boolean;
  completion?: number;
  reason?: string;
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

/** The seat after its steps, or undefined when none applies to it any more. */
function advance(seat: Seat, done: Step[], cfg: Config, now: string, maxAttempts: number): Seat | undefined {
  let s = seat;
  let changed = false;
  for (const st of done) {
    if (s.pending?.[0]?.order !== st.order || s.pending[0].action !== st.action) break;
    const ws: Workshop | undefined = cfg.workshops.get(s.workshop ?? "")?.value;
    const ctx: ResultContext = { now, durationHours: ws?.duration ?? 2, resetPolicy: ws?.reset ?? false };
    s = st.ok
      ? succeeded(s, st.action, ctx, st.completion)
      : failed(s, st.action, st.reason ?? "failed", ctx.now, maxAttempts);
    changed = true;
    if (!st.ok) break;
  }
  return changed ? s : undefined;
}

/** Commits the steps of every seat (one commit); true when something was committed. */
export async function commitOutcome(opts: {
  store: StateStore;
  cfg: Config;
  env: string;
  steps: Map<string, Step[]>;
  outcomes: SeatOutcome[];
  now: string;
  maxAttempts: number;
}): Promise<boolean> {
  const message = `apply ${opts.env}: ${
    opts.outcomes.map((o) => `${o.action} ${o.backend}/${o.seat} ${o.ok ? "ok" : "failed"}`).join(", ")
  }`.slice(0, 500);
  return await opts.store.updateSeats(message, (current) => {
    const out: Seat[] = [];
    for (const [key, done] of opts.steps) {
      const s = current.get(key);
      const next = s && advance(s, done, opts.cfg, opts.now, opts.maxAttempts);
      if (next) out.push(next);
    }
    return out;
  });
}
