// Run: one backend playbook run (backend/seats.ts runSeatTasks) for the planned items of a backend,
// and what each item's result means. New passwords are masked for GitHub Actions logs before
// anything could print them; a run error is kept short and redacted.
import { redactText } from "../common/exec.ts";
import { maskForActions } from "../common/mask.ts";
import type { Config } from "../config/load.ts";
import { runSeatTasks, type SeatResult } from "../backend/seats.ts";
import { type PlanItem, seatTask } from "./plan.ts";

export type RunSeatTasks = typeof runSeatTasks;

export interface BackendRun {
  results: SeatResult[];
  /** The run failed as a whole (host unreachable, playbook error): no seat result came back. */
  runError?: string;
  /** Every new password of the run (for redaction). */
  secrets: string[];
}

/** Runs the items of one backend; never throws (a failed run is `runError`). */
export async function runBackend(opts: {
  run: RunSeatTasks;
  config: Config;
  privateDir?: string;
  env: string;
  backend: string;
  items: PlanItem[];
  startServers: boolean;
  log: (line: string) => void;
  /** The backend's install record was just checked current (its seat script need not be copied). */
  seatToolCurrent?: boolean;
}): Promise<BackendRun> {
  let results: SeatResult[] = [];
  let runError: string | undefined;
  try {
    results = await opts.run({
      config: opts.config,
      privateDir: opts.privateDir,
      env: opts.env,
      backend: opts.backend,
      tasks: opts.items.map(({ seat, p }) => seatTask(seat, p)),
      log: opts.log,
      startServers: opts.startServers,
      ...(opts.seatToolCurrent ? { seatToolCurrent: true } : {}),
    });
  } catch (err) {
    runError = (err as Error).message.split("\n").slice(0, 5).join(" ");
  }
  const secrets = results.map((r) => r.password).filter((x): x is string => !!x);
  // In GitHub Actions, hide every new password from the logs before anything can print it.
  for (const s of secrets) maskForActions(s);
  return { results, runError, secrets };
}

/**
 * The successful result of one item, or why it failed. `hostLevel`: no seat result came back (host
 * unreachable, playbook error), so nothing is known about the seat: it stays as recorded and the next
 * apply runs the action again.
 */
export function itemResult(
  run: BackendRun,
  { seat, p }: PlanItem,
): { ok: SeatResult } | { reason: string; hostLevel: boolean } {
  const r = run.results.find((x) => x.seat === seat.seat && x.action === p.action);
  if (r && r.ok) return { ok: r };
  return {
    reason: redactText(run.runError ?? r?.error ?? "no result from the backend run", run.secrets),
    hostLevel: run.runError !== undefined || !r || r.hostFailure === true,
  };
}
