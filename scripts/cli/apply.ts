// `wod apply --env ENV [--dry-run]`: reconcile the backends with recorded state.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { apply } from "../reconcile/apply.ts";

export const help = `Usage: deno task wod apply --env ENV [--dry-run] [--private DIR] [--json]

Runs the seat actions recorded state asks for: ONE playbook run per backend for all pending seats,
then delivers credentials (front-end API: frontend.api_url with the credentials named by
frontend.username_env/password_env; participant email when mail.send_credentials is true, the
sealed address opened with WOD_AGE_IDENTITY or WOD_AGE_IDENTITY_FILE), then commits the results
(active, free, or failed with the reason; failed seats are retried by the next apply, until
timing.max_attempts failures in a row park them: \`wod drift\` lists parked seats, a new order for
the seat unparks it). A run that gets no seat result back (unreachable host, playbook error or
timeout) changes no seat. The whole run holds the environment's lease on the state store
(state/<env>/lease.json, renewed while running, free again at the end or 10 min after a crash):
a second apply of the same environment meanwhile stops with an error naming the holder.
A front-end callback that fails (CLEANUP, RESET, PURGE reported to the front end) is kept in state as a
pending delivery (state/<env>/deliveries.json, the password sealed) and retried by every apply until
delivered (\`wod state\` lists them). Nothing pending: no backend run, no lease and no commit. While
\`wod reconcile\` runs for ENV it holds the lease: this command is refused then. --dry-run prints the
tasks only.
Exit code: 0 when every seat action succeeded, 1 otherwise.`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("apply", args, {
    env: { type: "string" },
    "dry-run": { type: "boolean" },
    private: { type: "string" },
    json: { type: "boolean" },
  });
  const env = requireOption("apply", values.env, "env");
  const report = await apply({
    root: repoRoot(),
    env,
    privateDir: values.private,
    dryRun: values["dry-run"],
    log: values.json ? (l) => console.error(l) : (l) => console.log(l),
  });
  if (values.json) console.log(JSON.stringify(report, null, 2));
  return report.outcomes.some((o) => !o.ok) ? 1 : 0;
}
