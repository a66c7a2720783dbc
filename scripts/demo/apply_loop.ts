// "Apply on change" for one environment, in-process: watches the state remote and runs apply as soon
// as a seat has a pending action. Nothing in the toolkit starts apply by itself when the listener
// records an order (in production the push to the state branch triggers the apply workflow); the
// latency bench uses this loop as that trigger. Orders recorded while one apply runs are taken by the
// next one, so a burst becomes a few batched backend runs, not one run per seat.
import { loadConfig } from "../config/load.ts";
import { apply, type ApplyReport } from "../reconcile/apply.ts";
import { openStore } from "../state/store.ts";
import { sleep } from "./procs.ts";

export interface ApplyLoop {
  /** Apply runs made so far, with the seats each one handled. */
  readonly runs: { started: number; seconds: number; seats: number; failed: number }[];
  /** Stops after the apply in progress (if any). */
  stop(): Promise<void>;
}

export async function startApplyLoop(opts: {
  root: string;
  env: string;
  privateDir?: string;
  identities: string[];
  pollMs?: number;
  log?: (line: string) => void;
}): Promise<ApplyLoop> {
  const config = await loadConfig(opts.root, { privateDir: opts.privateDir });
  const store = await openStore(opts.root, opts.env, { config, privateDir: opts.privateDir });
  const runs: ApplyLoop["runs"] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      try {
        const seats = await store.readSeats();
        // Parked seats (apply no longer retries them) do not count as work.
        if (!seats.some((s) => (s.pending ?? []).length > 0 && !s.parked)) {
          await sleep(opts.pollMs ?? 100);
          continue;
        }
        const t0 = performance.now();
        const report: ApplyReport = await apply({
          root: opts.root,
          env: opts.env,
          privateDir: opts.privateDir,
          config,
          store,
          identities: opts.identities,
          log: opts.log ?? (() => {}),
        });
        runs.push({
          started: t0,
          seconds: (performance.now() - t0) / 1000,
          seats: report.outcomes.length,
          failed: report.outcomes.filter((o) => !o.ok).length,
        });
        // Failed seats stay pending (retried by the next apply): do not spin on them.
        if (runs[runs.length - 1].failed > 0) await sleep(1_000);
      } catch (err) {
        (opts.log ?? (() => {}))(`apply loop: ${(err as Error).message.split("\n")[0]}`);
        await sleep(500);
      }
    }
  })();
  return {
    runs,
    async stop() {
      stopped = true;
      await done;
      await store.close();
    },
  };
}
