// `wod state --env ENV [--json]`: the recorded seats of an environment.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { openStore } from "../state/store.ts";

export const help = `Usage: deno task wod state --env ENV [--json] [--private DIR]

Prints the recorded seats of ENV (from its state store). --json prints
{"seats":[{"backend","seat","workshop","status","orders":[ids],"allocated","expires",...}]}
(the sealed email is left out).`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("state", args, {
    env: { type: "string" },
    json: { type: "boolean" },
    private: { type: "string" },
  });
  const env = requireOption("state", values.env, "env");
  const store = await openStore(repoRoot(), env, { privateDir: values.private });
  try {
    const seats = (await store.readSeats()).map((s) => {
      const { email_sealed: _sealed, ...rest } = s;
      return rest;
    });
    if (values.json) {
      console.log(JSON.stringify({ env, where: store.where, seats }, null, 2));
      return 0;
    }
    console.log(`Recorded state of ${env} (${store.where}): ${seats.length} seat(s)`);
    for (const s of seats) {
      const pend = (s.pending ?? []).map((p) => p.action).join("+");
      console.log(
        [
          `${s.backend}/${s.seat}`.padEnd(12),
          s.status.padEnd(15),
          (s.workshop ?? "-").padEnd(20),
          `customer ${s.customer ?? "-"}`,
          s.expires ? `expires ${s.expires}` : "",
          pend ? `pending ${pend}` : "",
          s.reason ? `(${s.reason})` : "",
        ].filter(Boolean).join("  "),
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}
