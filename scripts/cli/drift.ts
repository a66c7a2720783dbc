// wod drift: compare each backend with recorded state. Over SSH (ssh2, host key pinned by the
// known_hosts of the connection) it reads the backend's own description (/etc/wod/backend.json),
// its student accounts and the content of active seats; over the JupyterHub API it reads which
// servers run. Exit 2 when anything differs; --repair records orders (source "drift") for what an
// order can fix.
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { Client } from "ssh2";
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import type { Order } from "../config/types.gen.ts";
import { type BackendConnection, backendConnection } from "../backend/seats.ts";
import { hubFetch } from "../backend/hub.ts";
import { openStore } from "../state/store.ts";
import type { SeatRecord } from "../state/store.ts";

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

export interface BackendFacts {
  info: { student_prefix: string; students: [number, number]; home_root: string };
  users: { seat: number; name: string; uid: number; home: string }[];
  /** seat -> the workshop folder exists and is not empty */
  content: Record<string, boolean>;
}

const PROBE = `
import json, os, pwd
DATA = json.loads(__DATA__)
info = json.load(open(DATA["info_file"]))
prefix = info["student_prefix"]
users = []
for p in pwd.getpwall():
    rest = p.pw_name[len(prefix):]
    if p.pw_name.startswith(prefix) and rest.isdigit():
        users.append({"seat": int(rest), "name": p.pw_name, "uid": p.pw_uid, "home": p.pw_dir})
content = {}
for c in DATA["content"]:
    path = os.path.join(info["home_root"], prefix + str(c["seat"]), c["workshop"])
    content[str(c["seat"])] = os.path.isdir(path) and len(os.listdir(path)) > 0
print(json.dumps({"info": info, "users": users, "content": content}))
`;

/** Does a known_hosts file pin `key` for host:port? (plain and hashed entries, no wildcards) */
export function hostKeyPinned(knownHosts: string, host: string, port: number, key: Buffer): boolean {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  const b64 = key.toString("base64");
  for (const raw of knownHosts.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    if (parts[0].startsWith("@")) continue; // @revoked / @cert-authority: not a pin
    if (parts.length < 3 || parts[2] !== b64) continue;
    const hostField = parts[0];
    if (hostField.startsWith("|1|")) {
      const [, , salt, hash] = hostField.split("|");
      for (const n of names) {
        const h = createHmac("sha1", Buffer.from(salt, "base64")).update(n).digest("base64");
        if (h === hash) return true;
      }
    } else if (hostField.split(",").some((h) => names.includes(h))) return true;
  }
  return false;
}

interface ExecStream {
  on(ev: "data", fn: (d: Buffer) => void): void;
  on(ev: "close", fn: (code: number | null) => void): void;
  stderr: { on(ev: "data", fn: (d: Buffer) => void): void };
  end(data: string): void;
}

/** Run a fixed command on the backend over SSH with the pinned host key; returns stdout. */
export async function sshRun(conn: BackendConnection, command: string, stdin: string): Promise<string> {
  const keyFile = conn.keyFile ?? Deno.env.get("WOD_SSH_KEY_FILE");
  const khFile = conn.knownHostsFile ?? Deno.env.get("WOD_KNOWN_HOSTS_FILE");
  if (!keyFile) throw new WodError(`No SSH key for ${conn.host}:${conn.port}: set WOD_SSH_KEY_FILE`);
  if (!khFile) {
    throw new WodError(
      `No known_hosts for ${conn.host}:${conn.port}: refusing an unpinned host key; set WOD_KNOWN_HOSTS_FILE`,
    );
  }
  const privateKey = await Deno.readTextFile(keyFile);
  const knownHosts = await Deno.readTextFile(khFile);
  return await new Promise<string>((resolve, reject) => {
    const client = new Client();
    let out = "";
    let err = "";
    let hostKeyRejected = false;
    client.on("ready", () => {
      client.exec(command, (e: Error | undefined, stream: ExecStream) => {
        if (e) {
          client.end();
          return reject(
            new WodError(`SSH command on ${conn.host}:${conn.port} failed to start`, { cause: e }),
          );
        }
        stream.on("data", (d: Buffer) => (out += d.toString()));
        stream.stderr.on("data", (d: Buffer) => (err += d.toString()));
        stream.on("close", (code: number | null) => {
          client.end();
          if (code === 0) resolve(out);
          else {
            reject(
              new WodError(
                `Probe on ${conn.host}:${conn.port} exited with ${code}: ${
                  err.trim().split("\n").slice(-3).join(" | ")
                }`,
              ),
            );
          }
        });
        stream.end(stdin);
      });
    });
    client.on("error", (e: Error) => {
      reject(
        new WodError(
          hostKeyRejected
            ? `Host key of ${conn.host}:${conn.port} is not the one pinned in ${khFile}`
            : `Cannot connect over SSH to ${conn.user}@${conn.host}:${conn.port}`,
          { cause: e },
        ),
      );
    });
    client.connect({
      host: conn.host,
      port: conn.port,
      username: conn.user,
      privateKey,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => {
        const ok = hostKeyPinned(knownHosts, conn.host, conn.port, key);
        if (!ok) hostKeyRejected = true;
        return ok;
      },
    });
  });
}

export async function probeBackend(
  conn: BackendConnection,
  content: { seat: number; workshop: string }[],
): Promise<BackendFacts> {
  const data = JSON.stringify(JSON.stringify({ info_file: "/etc/wod/backend.json", content }));
  const out = await sshRun(conn, "python3 -", PROBE.replace("__DATA__", data));
  try {
    return JSON.parse(out) as BackendFacts;
  } catch (err) {
    throw new WodError(`Probe on ${conn.host}:${conn.port} did not print JSON: ${out.slice(0, 200)}`, {
      cause: err,
    });
  }
}

/** Hub users with a running (or starting) server. */
export async function runningServers(conn: BackendConnection): Promise<Set<string>> {
  const tokenFile = conn.hubTokenFile ?? Deno.env.get("WOD_HUB_TOKEN_FILE");
  if (!tokenFile) throw new WodError(`No hub token for ${conn.hubUrl}: set WOD_HUB_TOKEN_FILE`);
  const token = (await Deno.readTextFile(tokenFile)).trim();
  const base = conn.hubUrl.replace(/\/+$/, "").replace(/\/hub$/, "");
  const url = `${base}/hub/api/users`;
  let res: Response;
  try {
    res = await hubFetch(url, { headers: { Authorization: `token ${token}` } });
  } catch (err) {
    throw new WodError(`Cannot reach the JupyterHub API at ${url}`, { cause: err });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new WodError(`JupyterHub API ${url} answered ${res.status} (expected 200 with the service token)`);
  }
  const users = await res.json() as {
    name: string;
    server?: string | null;
    pending?: string | null;
    servers?: object;
  }[];
  const running = new Set<string>();
  for (const u of users) {
    if (u.server || u.pending === "spawn" || (u.servers && Object.keys(u.servers).length > 0)) {
      running.add(u.name);
    }
  }
  return running;
}

/** Pure comparison of backend facts with recorded seats (one backend). */
export function compare(
  backend: string,
  facts: BackendFacts,
  running: Set<string>,
  seats: SeatRecord[],
): Drift[] {
  const out: Drift[] = [];
  const [first, last] = facts.info.students;
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
  const env = cfg.environments.get(envName);
  if (!env) {
    throw new WodError(
      `Unknown environment "${envName}": expected one of ${[...cfg.environments.keys()].join(", ")}`,
    );
  }
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
    console.log(formatDrift(envName, drift, format, checked));
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
    return drift.length ? 2 : 0;
  } finally {
    await store.close();
  }
}
