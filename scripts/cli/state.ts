// `wod state --env ENV [--json]`: the recorded seats of an environment.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { openStore } from "../state/store.ts";
import { readDeliveries } from "../state/deliveries.ts";

export const help = `Usage: deno task wod state --env ENV [--json] [--private DIR]

Prints the recorded seats of ENV (from its state store). --json prints
{"seats":[{"backend","seat","workshop","status","orders":[ids],"allocated","expires",...}]}
(the sealed email is left out), and "deliveries": the front-end callbacks that failed and are retried
by every apply or reconcile pass (state/<env>/deliveries.json; the sealed password is left out).`;

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
    const deliveries = (await readDeliveries(store)).map((d) => {
      const { password_sealed: _sealed, ...rest } = d;
      return rest;
    });
    if (values.json) {
      console.log(JSON.stringify({ env, where: store.where, seats, deliveries }, null, 2));
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
    if (deliveries.length > 0) console.log(`Pending deliveries to the front end: ${deliveries.length}`);
    for (const d of deliveries) {
      console.log(
        `  ${`${d.backend}/${d.seat}`.padEnd(12)}${
          d.action.padEnd(8)
        } order ${d.order}, ${d.attempts} attempt(s), ` +
          `next ${d.next_try}: ${d.last_error}`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}
