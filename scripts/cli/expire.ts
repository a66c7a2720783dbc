// `wod expire --env ENV [--now ISO-8601]`: reminders and expiry orders at time --now.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { expire } from "../reconcile/expire.ts";

export const help = `Usage: deno task wod expire --env ENV [--now ISO-8601] [--private DIR] [--json]

At time --now (default: the clock): sends the reminder once before a seat's end (timing.reminder_minutes,
recorded in the seat), records CLEANUP then RESET (workshop reset: true) or PURGE for expired seats,
and the same for seats stuck in provisioning longer than timing.provisioning_timeout_minutes (as
failed). Run \`wod apply\` afterwards to carry the orders out.`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("expire", args, {
    env: { type: "string" },
    now: { type: "string" },
    private: { type: "string" },
    json: { type: "boolean" },
  });
  const env = requireOption("expire", values.env, "env");
  let now: Date | undefined;
  if (values.now !== undefined) {
    now = new Date(values.now);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(values.now) || Number.isNaN(now.getTime())) {
      throw new UsageError(
        `Invalid --now "${values.now}": expected an ISO-8601 time such as 2026-01-31T18:00:00Z`,
      );
    }
  }
  const report = await expire({
    root: repoRoot(),
    env,
    privateDir: values.private,
    now,
    log: values.json ? (l) => console.error(l) : (l) => console.log(l),
  });
  if (values.json) {
    console.log(JSON.stringify({ recorded: report.recorded, reminded: report.reminded }, null, 2));
  }
  return 0;
}
