// wod drift: compare each backend with recorded state. Over SSH (ssh2, host key pinned by the
// known_hosts of the connection) it reads the backend's own description (/etc/wod/backend.json),
// its student accounts and the content of active seats; over the JupyterHub API it reads which
// servers run. Exit 2 when anything differs; --repair records orders (source "drift") for what an
// order can fix.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import type { Order } from "../config/types.gen.ts";
import { backendConnection } from "../backend/seats.ts";
import { type BackendFacts, probeBackend, runningServers } from "../backend/probe.ts";
import { openStore } from "../state/store.ts";
import { formatStale, staleBackends } from "../backend/install_targets.ts";
import type { SeatRecord } from "../state/store.ts";
import { formatFrontendDrift, frontendDrift } from "../notify/apidb.ts";

export const help = `
Usage: deno task wod drift --env ENV [--repair] [--format text|markdown] [--private DIR]

Compare every backend of ENV with recorded state: student accounts missing from the pool or unknown
to it, a JupyterHub server running on a seat recorded as free, workshop content missing from an
active seat. SSH uses the pinned host key (known_hosts of the backend connection, or
$WOD_KNOWN_HOSTS_FILE); the hub API uses the hub token (file of the connection, or
$WOD_HUB_TOKEN_FILE). Exit 0 when all agree, 2 on drift. --format markdown is for a job summary.
--repair records a PURGE order for a free seat with a running server or a missing account (the
others need an operator and are listed as such). Seats apply has parked (their action failed
timing.max_attempts times in a row, apply no longer retries them) are listed as parked-seat with the
reason: fix the cause, then record an order for the seat (e.g. wod order purge), which unparks it.
With a front end (frontend.api_url), its workshops (GET /workshops, the credentials named by
frontend.username_env / password_env) are compared with ENV too, one "frontend:" line per
difference (wod frontend export writes the rows from our files).
A backend whose install record (/etc/wod/install.json) differs from what this repository would
install now (roles, install.yml, seat script or the environment's values changed) is listed as
stale-install with the fix (wod install --env ENV); --repair does not install.
`;

export type DriftKind =
  | "missing-user"
  | "unknown-user"
  | "server-on-free-seat"
  | "content-missing"
  | "parked-seat";

export interface Drift {
  backend: string;
  seat: number;
  kind: DriftKind;
  detail: string;
  /** The order --repair records, when an order can fix it. */
  repair?: "PURGE";
}

/** Pure comparison of backend facts with recorded seats (one backend). */
export function compare(
  backend: string,
  facts: BackendFacts,
  running: Set<string>,
  seats: SeatRecord[],
): Drift[] {
  const out: Drift[] = [];
  // The role may write the pool bounds as strings ("1"): compare numbers.
  const [first, last] = facts.info.students.map(Number);
  const prefix = facts.info.student_prefix;
  const have = new Set(facts.users.map((u) => u.seat));
  const rec = new Map(seats.filter((s) => s.backend === backend).map((s) => [s.seat, s]));
  for (let n = first; n <= last; n++) {
    if (!have.has(n)) {
      out.push({
        backend,
        seat: n,
        kind: "missing-user",
        detail: `${prefix}${n} is in the pool but has no account`,
        repair: "PURGE",
      });
    }
  }
  for (const u of facts.users) {
    if (u.seat < first || u.seat > last) {
      out.push({
        backend,
        seat: u.seat,
        kind: "unknown-user",
        detail: `${u.name} (uid ${u.uid}) is outside the pool [${first}, ${last}]`,
      });
    }
  }
  for (const name of running) {
    if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue;
    const n = Number(name.slice(prefix.length));
    const status = rec.get(n)?.status ?? "free";
    if (status === "free") {
      out.push({
        backend,
        seat: n,
        kind: "server-on-free-seat",
        detail: `${name} has a running server but the seat is recorded free`,
        repair: "PURGE",
      });
    }
  }
  for (const s of rec.values()) {
    if (s.parked) {
      out.push({
        backend,
        seat: s.seat,
        kind: "parked-seat",
        detail: `${prefix}${s.seat}: ${
          s.pending?.[0]?.action ?? "its action"
        } parked since ${s.parked} after ${s.attempts ?? 0} failed attempt(s), apply no longer retries it: ${
          s.reason ?? "no reason recorded"
        }`,
      });
    }
    if (s.status === "active" && s.workshop && facts.content[String(s.seat)] === false) {
      out.push({
        backend,
        seat: s.seat,
        kind: "content-missing",
        detail:
          `${prefix}${s.seat} is recorded active for ${s.workshop} but ${facts.info.home_root}/${prefix}${s.seat}/${s.workshop} is missing or empty`,
      });
    }
  }
  return out.sort((a, b) => a.seat - b.seat || a.kind.localeCompare(b.kind));
}

export function formatDrift(
  env: string,
  drift: Drift[],
  format: "text" | "markdown",
  checked: string[],
): string {
  if (format === "text") {
    if (!drift.length) return `No drift on ${env} (${checked.join(", ")})`;
    return drift.map((d) =>
      `${d.backend}/${d.seat}: ${d.kind}: ${d.detail}${d.repair ? ` (repair: ${d.repair})` : ""}`
    )
      .join("\n");
  }
  const lines = [`### Drift on ${env}`, ""];
  if (!drift.length) {
    lines.push(`No drift: ${checked.join(", ")} match recorded state.`);
    return lines.join("\n") + "\n";
  }
  lines.push(`${drift.length} difference(s) between the backends and recorded state:`, "");
  lines.push("| backend | seat | drift | detail | repair |", "|---|---|---|---|---|");
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  for (const d of drift) {
    lines.push(`| ${d.backend} | ${d.seat} | ${d.kind} | ${cell(d.detail)} | ${d.repair ?? "operator"} |`);
  }
  return lines.join("\n") + "\n";
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("drift", args, {
    env: { type: "string" },
    repair: { type: "boolean" },
    format: { type: "string", default: "text" },
    private: { type: "string" },
  });
  const envName = requireOption("drift", values.env, "env");
  const format = values.format as string;
  if (format !== "text" && format !== "markdown") {
    throw new UsageError(`Invalid --format "${format}": expected text or markdown`);
  }
  const root = repoRoot();
  const cfg = await loadConfig(root, { privateDir: values.private });
  const env = requireEnvironment(cfg, envName);
  const store = await openStore(root, envName, { config: cfg, privateDir: values.private });
  try {
    const seats = await store.readSeats();
    const drift: Drift[] = [];
    const checked: string[] = [];
    for (const b of env.value.backends) {
      const conn = await backendConnection(root, envName, b.name, values.private);
      const content = seats.filter((s) => s.backend === b.name && s.status === "active" && s.workshop)
        .map((s) => ({ seat: s.seat, workshop: s.workshop! }));
      const [facts, running] = await Promise.all([probeBackend(conn, content), runningServers(conn)]);
      drift.push(...compare(b.name, facts, running, seats));
      checked.push(b.name);
    }
    const stale = formatStale(envName, await staleBackends(cfg, envName));
    const report = formatDrift(envName, drift, format, checked);
    if (!stale.length) console.log(report);
    else if (format === "text") console.log((drift.length ? report + "\n" : "") + stale.join("\n"));
    else {
      console.log(
        (drift.length ? report + "\n" : "") +
          ["#### Stale installs", "", ...stale.map((l) => `- ${l.replace(/\|/g, "\\|")}`), ""].join("\n"),
      );
    }
    // The front end's workshop rows (GET /api/workshops) against our files, when there is a front end.
    const front = await frontendDrift(cfg, envName);
    if (front) console.log(formatFrontendDrift(envName, front, format));
    if (values.repair && drift.length) {
      const received = new Date().toISOString();
      const hour = received.slice(0, 13).replace(/[-T:]/g, "");
      const orders: Order[] = [];
      for (const d of drift) {
        if (!d.repair) continue;
        const backend = env.value.backends.find((b) => b.name === d.backend)!;
        const workshop = Object.entries(backend.ranges ?? {}).find(([, r]) =>
          d.seat >= r[0] && d.seat <= r[1]
        )?.[0];
        if (!workshop) {
          console.error(`Seat ${d.backend}/${d.seat} is in no workshop range: no order for it (operator)`);
          continue;
        }
        orders.push({
          id: `drift-${envName}-${d.backend}-${d.seat}-${d.kind}-${hour}`,
          received,
          action: d.repair,
          env: envName,
          backend: d.backend,
          workshop,
          seats: [d.seat, d.seat],
          source: "drift",
          reason: d.detail,
        } as Order);
      }
      if (orders.length) {
        const res = await store.recordOrders(orders);
        console.error(
          `Recorded ${res.recorded.length} repair order(s) in ${store.where}` +
            (res.duplicates.length ? ` (${res.duplicates.length} already recorded)` : ""),
        );
      }
    }
    return drift.length || stale.length || front?.differences.length ? 2 : 0;
  } finally {
    await store.close();
  }
}
