// wod seats <action>: run a seat action directly on a backend (operators' low-level tool).
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { findBackend, loadConfig, requireEnvironment } from "../config/load.ts";
import { runSeatTasks } from "../backend/seats.ts";
import { isAction, parseSeats, seatList } from "../orders/order.ts";
import { poolProblem } from "../orders/validate.ts";

export const help = `
Usage: deno task wod seats <create|cleanup|reset|purge> --env ENV --workshop ID --seats N[-M] [--credentials FILE]

Run one seat action for seats N..M of a workshop on a backend of ENV, in one Ansible run
(ansible/seats.yml). Every action sets a new random password; passwords are written only to FILE
(mode 0600, JSON [{"seat","username","password"}]), never to stdout or stderr. Prints one JSON line per
seat (seat, action, ok, status, completion, error) on stdout; exit 1 when a seat failed.

Options:
  --env ENV          environment (environments/ENV.yaml)
  --workshop ID      workshop id (workshops/ID/)
  --seats N[-M]      one seat or an inclusive range
  --backend NAME     backend of ENV (default: its only backend, or the one whose range holds the seats)
  --mode MODE        WKSHP (default) or CHLG (challenge variant: MODEWS in the notebooks)
  --credentials FILE where the new passwords go (created with mode 0600)
  --private DIR      private repo overlay
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("seats", args, {
    env: { type: "string" },
    workshop: { type: "string" },
    seats: { type: "string" },
    backend: { type: "string" },
    mode: { type: "string", default: "WKSHP" },
    credentials: { type: "string" },
    private: { type: "string" },
  }, true);
  if (positionals.length !== 1) {
    throw new UsageError('Expected one action for "wod seats": create, cleanup, reset or purge');
  }
  const action = positionals[0].toUpperCase();
  if (!isAction(action)) {
    throw new UsageError(`Unknown seat action "${positionals[0]}": expected create, cleanup, reset or purge`);
  }
  const envName = requireOption("seats", values.env, "env");
  const workshop = requireOption("seats", values.workshop, "workshop");
  // Any range, for every action: this tool acts on seats directly, not through orders.
  const range = parseSeats(requireOption("seats", values.seats, "seats"), { what: "--seats" });
  const mode = values.mode as string;
  if (mode !== "WKSHP" && mode !== "CHLG") {
    throw new UsageError(`Invalid --mode "${mode}": expected WKSHP or CHLG`);
  }
  const root = repoRoot();
  const privateDir = values.private as string | undefined;
  const cfg = await loadConfig(root, { privateDir });
  const env = requireEnvironment(cfg, envName);
  let backend = values.backend as string | undefined;
  if (!backend) {
    const backends = env.value.backends;
    const holding = backends.filter((b) => {
      const r = b.ranges?.[workshop] as [number, number] | undefined;
      return r && range[0] >= r[0] && range[1] <= r[1];
    });
    if (backends.length === 1) backend = backends[0].name;
    else if (holding.length === 1) backend = holding[0].name;
    else throw new UsageError(`Environment "${envName}" has several backends: choose one with --backend`);
  }
  const outside = poolProblem(findBackend(env, backend), envName, range);
  if (outside) throw new WodError(outside);
  const seats = seatList(range);
  const credentials = values.credentials as string | undefined;
  if (credentials) {
    // Created (empty) before the run so a bad path fails early, with the final mode from the start.
    await Deno.writeTextFile(credentials, "[]\n", { mode: 0o600 });
    await Deno.chmod(credentials, 0o600);
  }
  const results = await runSeatTasks({
    config: cfg,
    privateDir,
    env: envName,
    backend,
    tasks: seats.map((seat) => ({ action, workshop, seat, mode })),
    log: (l) => console.error(l),
  });
  if (credentials) {
    const rows = results.filter((r) => r.ok && r.password).map((r) => ({
      seat: r.seat,
      username: `student${r.seat}`,
      password: r.password,
    }));
    await Deno.writeTextFile(credentials, JSON.stringify(rows, null, 2) + "\n", { mode: 0o600 });
  }
  for (const r of results) {
    const { password: _secret, ...shown } = r;
    console.log(JSON.stringify(shown));
  }
  if (!credentials && action === "CREATE" && results.some((r) => r.ok)) {
    console.error("note: no --credentials FILE given, the new passwords were not kept");
  }
  return results.every((r) => r.ok) ? 0 : 1;
}
