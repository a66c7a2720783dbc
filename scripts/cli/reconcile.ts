// `wod reconcile --env ENV [--health HOST:PORT]`: the long-running reconciler of one environment.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import { throwOnConfigErrors } from "../config/report.ts";
import { createLogger } from "../common/log.ts";
import { startService } from "../reconcile/service.ts";

export const help = `
Usage: deno task wod reconcile --env ENV [--health HOST:PORT|none] [--private DIR]

The long-running reconciler of environment ENV (a service beside \`wod listen\` on the control host):
applies recorded orders as soon as they appear, with the same code as \`wod apply\` (one backend run
per backend for everything pending, credentials delivered, one commit), and runs \`wod expire\`
every minute (reminders, end of workshop, stuck seats). It acts only while it holds the
environment's lease (state/<env>/lease.json on the state branch, renewed every third of its time to
live): a second reconciler waits on standby and takes over within the lease time when the holder
dies; \`wod apply\` (locally or in Actions) is refused meanwhile.

It notices new orders through POST /wake (the listener's nudge: orders.reconciler_wake or
\`wod listen --wake URL\`) and, as a fallback, by fetching the state branch every --fetch-interval
seconds (lease renewals do not count as changes). A failed pass is retried with exponential backoff
(2 s doubling, at most 5 min). SIGTERM or SIGINT: no new pass; the running one finishes, the lease is
released, exit 0.

HTTP (loopback by default): GET /health (JSON: lease, last reconcile, pending seats, failures; 503
when degraded), GET /metrics (Prometheus text format), POST /wake (from loopback only).
Logs: JSON lines on stdout; every line about an order names it; no participant address is logged.

Options:
  --env ENV                 environment (environments/ENV.yaml)
  --health HOST:PORT        HTTP endpoint (default 127.0.0.1:10030; "none": no endpoint)
  --fetch-interval SECONDS  fallback check of the state branch (default 5)
  --expire-interval SECONDS expiry run (default 60)
  --lease-ttl SECONDS       lease time to live (default 30)
  --private DIR             private overlay checkout
`;

function seconds(text: string | undefined, flag: string, dflt: number): number {
  if (text === undefined) return dflt * 1000;
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) <= 0) {
    throw new UsageError(`Invalid --${flag} "${text}": expected a positive number of seconds`);
  }
  return Math.round(Number(text) * 1000);
}

function hostPort(text: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) {
    throw new UsageError(`Invalid --health "${text}": expected HOST:PORT or none`);
  }
  return { hostname: m[1], port: Number(m[2]) };
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("reconcile", args, {
    env: { type: "string" },
    health: { type: "string" },
    "fetch-interval": { type: "string" },
    "expire-interval": { type: "string" },
    "lease-ttl": { type: "string" },
    private: { type: "string" },
  });
  const envName = requireOption("reconcile", values.env, "env");
  const healthText = values.health ?? "127.0.0.1:10030";
  const health = healthText === "none" ? undefined : hostPort(healthText);
  const reconciler = {
    fetchIntervalMs: seconds(values["fetch-interval"], "fetch-interval", 5),
    expireIntervalMs: seconds(values["expire-interval"], "expire-interval", 60),
    leaseTtlMs: seconds(values["lease-ttl"], "lease-ttl", 30),
  };
  const root = repoRoot();
  const privateDir = values.private as string | undefined;
  const config = await loadConfig(root, { privateDir });
  throwOnConfigErrors(config.diagnostics);
  requireEnvironment(config, envName);
  const log = createLogger();
  const service = await startService({ root, env: envName, privateDir, config, health, log, reconciler });
  const done = Promise.withResolvers<void>();
  let signals = 0;
  const stop = () => {
    if (++signals > 1) {
      // A second signal: exit now (the lease expires by itself; nothing recorded is lost).
      log("stopped", { forced: true });
      log.flush();
      Deno.exit(1);
    }
    log("stopping", { note: "finishing the running pass" });
    done.resolve();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await done.promise;
  await service.stop();
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  log.flush();
  return 0;
}
