// Bench: the production shape on this machine. A control host and two backend hosts, each in its own
// network namespace (the sandbox, scripts/backend/sandbox.ts): the backends jup1 and jup2 (reached by
// Ansible over SSH at their own addresses), and the sandbox's control host `ctl` holding the state
// remote, a bare git repository reached over SSH (ssh://wod@<ctl>/..., GIT_SSH_COMMAND with the
// sandbox's key and pinned known_hosts). `wod listen` and `wod reconcile` (the control host's two
// services; the listener nudges the reconciler through POST /wake) run as processes on THIS machine, in
// its root network namespace, not inside `ctl`: they reach the state remote and the backends over the
// sandbox's links. Orders are the original front end's raw bytes (scripts/orders/send.ts
// sendOriginalOrder) to wodadmin@localhost (jup1) and wodadmin@jup2.localhost (jup2, front-end seats
// from 121: base_stdid 120; the subject carries the backend's own seat number); credentials are caught
// by the SMTP sink. Prints:
//   prod_order_to_ready_p50_s / _p95_s   BENCH_PROD_SEQ (20) single orders, one after another, taking
//                                        turns on jup1 and jup2 (raw order sent -> credentials email)
//   prod_burst<N>_all_ready_s            BENCH_PROD_BURST (100) orders at once, half on each backend
//   prod_noop_reconcile_2000_s           one reconcile pass (expiry + apply, nothing pending) over 2000
//                                        recorded seats (timed by the reconciler's own "pass" event)
//   prod_<phase>_apply_passes            the reconciler's passes that applied orders, from its JSON-lines
//                                        log: how many, their seconds, and per backend the mean seconds
//                                        from a pass's start to its plan line, to the playbook's end (and
//                                        wod-seat's own seconds on the host) and to the seat results
// and the baseline from the same run: local_order_to_ready_p50_s, BENCH_LOCAL_SEQ (20) single orders
// through today's single-host path (the listener + the in-process apply loop of scripts/demo/, the state
// remote a bare repository by local path, jup1 only).
// Seats 71-120 of jup1 and of jup2 (docs/testbed.md: only when the bench runs alone), purged on both at
// the end. Needs root (the sandbox). Goals: p50 <= 5 s, burst of 100 <= 30 s, no-op over 2000 <= 5 s.
import { join } from "node:path";
import { stringify } from "yaml";
import { exec } from "../scripts/common/exec.ts";
import { initBare } from "../scripts/common/git.ts";
import {
  ensureSandboxControlHost,
  ensureSandboxHosts,
  type SandboxControlInfo,
  sshOptions,
} from "../scripts/backend/sandbox.ts";
import { runSeatTasks } from "../scripts/backend/seats.ts";
import { newIdentity } from "../scripts/state/seal.ts";
import { openStore } from "../scripts/state/store.ts";
import { startSmtpSink } from "../scripts/testing/smtp_sink.ts";
import { sendOriginalOrder } from "../scripts/orders/send.ts";
import { loadConfig } from "../scripts/config/load.ts";
import { type ApplyLoop, startApplyLoop } from "../scripts/demo/apply_loop.ts";
import { freePort, type ProcRecord, sleep, spawnDetached, stopProcess } from "../scripts/demo/procs.ts";

const num = (name: string, d: number) => Number(Deno.env.get(name) ?? d);
const SEQ = num("BENCH_PROD_SEQ", 20);
const LOCAL_SEQ = num("BENCH_LOCAL_SEQ", 20);
const BURST = num("BENCH_PROD_BURST", 100);
const NOOP = num("BENCH_PROD_NOOP_SEATS", 2000);
const FIRST = 71, LAST = 120, WORKSHOP = "WKSHP-Shell101";
const PER_BACKEND = LAST - FIRST + 1;
/** The two backends and their order addresses (environments/local.yaml: admin user @ fqdn). */
const BACKENDS = [
  { name: "jup1", to: "wodadmin@localhost" },
  { name: "jup2", to: "wodadmin@jup2.localhost" },
];
const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const WOD = join(REPO, "scripts", "wod.ts");

if (Deno.uid() !== 0) {
  console.error("error: bench production needs root (it runs the sandbox backend)");
  Deno.exit(1);
}
if (Math.max(SEQ, BURST) > 2 * PER_BACKEND || LOCAL_SEQ > PER_BACKEND) {
  console.error(
    `error: at most ${
      2 * PER_BACKEND
    } orders per production phase (seats ${FIRST}-${LAST} of jup1 and jup2) ` +
      `and ${PER_BACKEND} for the local baseline (jup1 only)`,
  );
  Deno.exit(1);
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const fmt = (x: number) => x.toFixed(2);

const tmp = await Deno.makeTempDir({ prefix: "wod-bench-production-" });
const root = join(tmp, "repo");
await Deno.mkdir(root);
for (const d of ["environments", "workshops"]) await exec("cp", ["-r", join(REPO, d), join(root, d)]);
await ensureSandboxHosts((l) => console.error(`sandbox: ${l}`));
const ctl = await ensureSandboxControlHost((l) => console.error(`sandbox: ${l}`));
/** Where the state remotes live on the control host (one bare repository per phase). */
const CTL_DIR = `/home/${ctl.ssh_user}/wod-bench-production`;
/** How git reaches the control host: the sandbox's key and pinned host key, each word shell-quoted. */
const GIT_SSH_COMMAND = ["ssh", ...sshOptions(ctl.ssh_key, ctl.known_hosts, ctl.ssh_port)]
  .map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(" ");
// The bench's own git (recording the no-op phase's seats) goes over SSH the same way.
Deno.env.set("GIT_SSH_COMMAND", GIT_SSH_COMMAND);
const sink = await startSmtpSink(join(tmp, "sink"));
const { identity, recipient } = await newIdentity();

/** A command on the control host as its SSH user (fixed words only: ssh joins them). */
async function onCtl(c: SandboxControlInfo, argv: string[]): Promise<void> {
  await exec("ssh", [
    ...sshOptions(c.ssh_key, c.known_hosts, c.ssh_port),
    `${c.ssh_user}@${c.host}`,
    "--",
    ...argv,
  ]);
}

/** When (ms) the first email to `addr` reached the sink. */
async function deliveredAt(addr: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const at = delivered.get(addr);
    if (at !== undefined) return at;
    if (Date.now() > end) throw new Error(`No credentials email for ${addr} within ${timeoutMs / 1000} s`);
    await scanSink();
    await sleep(50);
  }
}

/** Recipient -> mtime (ms) of the first message to it; every sink file is read once (a burst's 100
 * waiters share one scan instead of each reading every file). */
const delivered = new Map<string, number>();
const scanned = new Set<string>();
let scanning: Promise<void> | undefined;
function scanSink(): Promise<void> {
  scanning ??= (async () => {
    for await (const e of Deno.readDir(sink.dir)) {
      if (!e.name.endsWith(".eml") || scanned.has(e.name)) continue;
      const file = join(sink.dir, e.name);
      const lines = (await Deno.readTextFile(file)).split(/\r?\n/);
      const i = lines.findIndex((l) => l.startsWith("X-Sink-To: "));
      if (i < 0 || i === lines.length - 1) continue; // not fully written yet: read again on the next scan
      const to = lines[i];
      scanned.add(e.name);
      const mtime = (await Deno.stat(file)).mtime!.getTime();
      for (const a of to.slice("X-Sink-To: ".length).split(", ")) {
        if (!delivered.has(a)) delivered.set(a, mtime);
      }
    }
  })().finally(() => scanning = undefined);
  return scanning;
}

/** One JSON line of the reconciler's log. */
type LogLine = { t: string; event: string; message?: string; seconds?: number; why?: string };

interface Rig {
  name: string;
  port: number;
  health: number;
  privateDir: string;
  procs: ProcRecord[];
  loop?: ApplyLoop;
  log: () => Promise<LogLine[]>;
}

/**
 * The phase's environment overlay: the seats on jup1 (and jup2 in production mode), the listener's
 * address, the sink, the seal key, the state remote.
 */
async function writeEnv(privateDir: string, mode: "reconciler" | "loop", o: {
  port: number;
  health: number;
  remote: string;
}): Promise<void> {
  const backends = (mode === "reconciler" ? BACKENDS : BACKENDS.slice(0, 1))
    .map((b) => ({ name: b.name, ranges: { [WORKSHOP]: [FIRST, LAST] } }));
  await Deno.mkdir(join(privateDir, "environments"), { recursive: true });
  await Deno.writeTextFile(
    join(privateDir, "environments", "local.yaml"),
    stringify({
      name: "local",
      backends,
      orders: {
        listen: `127.0.0.1:${o.port}`,
        ...(mode === "reconciler" ? { reconciler_wake: `http://127.0.0.1:${o.health}/wake` } : {}),
        // The original front end opens one connection per order and never retries a refusal: a burst of
        // BURST registrations from its one address needs that many connections at once (the default
        // per-address limit, 50, refused half of a burst of 100 with 421; docs/interop.md).
        limits: { max_connections_per_address: Math.max(50, BURST) },
      },
      mail: {
        from: "wod-bench@localhost",
        smtp_host: "127.0.0.1",
        smtp_port: sink.port,
        send_credentials: true,
      },
      seal: { recipients: [recipient] },
      state: { store: "git", remote: o.remote, branch: "state" },
    }),
  );
}

/**
 * A fresh state remote and overlay, the listener, and the reconciler (production: the remote a bare
 * repository on the control host over SSH) or the demo's apply loop (baseline: a bare repository by
 * local path).
 */
async function rig(name: string, mode: "reconciler" | "loop"): Promise<Rig> {
  const dir = join(tmp, name);
  const privateDir = join(dir, "private");
  let remote = join(dir, "state.git");
  if (mode === "reconciler") {
    await onCtl(ctl, ["git", "init", "-q", "--bare", `${CTL_DIR}/${name}.git`]);
    remote = `ssh://${ctl.ssh_user}@${ctl.host}${CTL_DIR}/${name}.git`;
  } else {
    await Deno.mkdir(dir, { recursive: true });
    await initBare(remote);
  }
  const port = freePort(true);
  const health = freePort();
  await writeEnv(privateDir, mode, { port, health, remote });
  const start = (what: string, args: string[]) =>
    spawnDetached(what, [
      Deno.execPath(),
      "run",
      "-A",
      WOD,
      ...args,
      "--env",
      "local",
      "--private",
      privateDir,
    ], {
      log: join(dir, `${what}.log`),
      cwd: REPO,
      env: { WOD_ROOT: root, WOD_AGE_IDENTITY: identity, GIT_SSH_COMMAND },
    });
  const procs = [start("listener", ["listen", "--health", "none", "--spool", join(dir, "spool")])];
  let loop: ApplyLoop | undefined;
  if (mode === "reconciler") {
    procs.push(start("reconciler", ["reconcile", "--health", `127.0.0.1:${health}`]));
  } else loop = await startApplyLoop({ root, env: "local", privateDir, identities: [identity] });
  const r: Rig = {
    name,
    port,
    health,
    privateDir,
    procs,
    loop,
    log: async () =>
      (await Deno.readTextFile(join(dir, "reconciler.log")).catch(() => "")).split("\n")
        .filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
  };
  await waitReady(r, mode, dir);
  return r;
}

/** Ready: the listener answers, the reconciler holds the lease. */
async function waitReady(r: Rig, mode: "reconciler" | "loop", dir: string): Promise<void> {
  for (let i = 0;; i++) {
    const ok = await Deno.connect({ hostname: "127.0.0.1", port: r.port }).then(
      (c) => (c.close(), true),
      () => false,
    );
    const held = mode === "loop" || await fetch(`http://127.0.0.1:${r.health}/health`)
      .then((x) => x.json()).then((h) => h.lease?.held === true, () => false);
    if (ok && held) return;
    if (i > 600) throw new Error(`The ${r.name} rig did not come up (logs in ${dir})`);
    await sleep(100);
  }
}

async function closeRig(r: Rig): Promise<void> {
  await r.loop?.stop();
  for (const p of r.procs.reverse()) await stopProcess(p, 60_000);
}

/** Order number `i` of a phase: production phases take turns on jup1 and jup2; the baseline uses jup1. */
function seatOf(i: number, both: boolean): { backend: (typeof BACKENDS)[number]; seat: number } {
  return both
    ? { backend: BACKENDS[i % 2], seat: FIRST + Math.floor(i / 2) }
    : { backend: BACKENDS[0], seat: FIRST + i };
}

function order(r: Rig, i: number, both: boolean, addr: string): Promise<number> {
  const { backend, seat } = seatOf(i, both);
  return sendOriginalOrder(r.port, {
    helo: "api-db.localhost",
    from: "wodadmin@localhost",
    to: backend.to,
    subject: `CREATE ${seat} ${5000 + seat} ${addr}`,
    body: WORKSHOP,
  }).then(() => Date.now());
}

const addrOf = (tag: string, i: number, both: boolean) => {
  const { backend, seat } = seatOf(i, both);
  return `${tag}-${backend.name}-${seat}@example.org`;
};

async function sequential(r: Rig, n: number, tag: string, both: boolean): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const sent = await order(r, i, both, addrOf(tag, i, both));
    lat.push((await deliveredAt(addrOf(tag, i, both), 180_000) - sent) / 1000);
  }
  return lat;
}

async function burst(r: Rig, n: number): Promise<number> {
  const ids = Array.from({ length: n }, (_, i) => i);
  const t0 = Date.now();
  await Promise.all(ids.map((i) => order(r, i, true, addrOf("burst", i, true))));
  const done = await Promise.all(ids.map((i) => deliveredAt(addrOf("burst", i, true), 600_000)));
  return (Math.max(...done) - t0) / 1000;
}

/** Seconds from a pass's start to what happened for one backend in it (from the reconciler's log). */
interface BackendTimes {
  /** The plan line (`jup1: CREATE 71, ...`): the backend run starts. */
  plan?: number;
  /** `seats.yml jup1: backend seconds {...}`: the playbook run ended. */
  done?: number;
  /** wod-seat's own seconds on the host (the sum of its laps). */
  host?: number;
  /** The last seat result line (`jup1/71 CREATE ok (delivered: ...)`): credentials sent. */
  results?: number;
}

/** The reconciler's passes that applied orders (an "order-applied" line between "pass-started" and "pass"). */
function applyPasses(lines: LogLine[]): { seconds: number; backends: Map<string, BackendTimes> }[] {
  const out: { seconds: number; backends: Map<string, BackendTimes> }[] = [];
  let started = 0, applied = false, backends = new Map<string, BackendTimes>();
  const at = (name: string) => backends.get(name) ?? backends.set(name, {}).get(name)!;
  for (const l of lines) {
    const t = (Date.parse(l.t) - started) / 1000;
    const msg = l.event === "apply" ? l.message ?? "" : "";
    let m: RegExpExecArray | null;
    if (l.event === "pass-started") [started, applied, backends] = [Date.parse(l.t), false, new Map()];
    else if (l.event === "order-applied") applied = true;
    else if (l.event === "pass" && applied) out.push({ seconds: l.seconds ?? 0, backends });
    else if ((m = /^([\w.-]+): (?:[A-Z]+ \d+(?:, )?)+$/.exec(msg))) at(m[1]).plan = t;
    else if ((m = /^seats\.yml ([\w.-]+): backend seconds (\{.*\})$/.exec(msg))) {
      const laps = Object.values(JSON.parse(m[2]) as Record<string, number>);
      Object.assign(at(m[1]), { done: t, host: laps.reduce((n, x) => n + x, 0) });
    } else if ((m = /^([\w.-]+)\/\d+ [A-Z]+ (ok|failed)/.exec(msg))) at(m[1]).results = t;
  }
  return out;
}

function passesLine(phase: string, lines: LogLine[]): string {
  const ps = applyPasses(lines);
  const total = ps.reduce((n, p) => n + p.seconds, 0);
  const mean = (b: string, k: keyof BackendTimes) => {
    const xs = ps.map((p) => p.backends.get(b)?.[k]).filter((x): x is number => x !== undefined);
    return xs.length ? (xs.reduce((n, x) => n + x, 0) / xs.length).toFixed(1) : "-";
  };
  const per = BACKENDS.filter((b) => ps.some((p) => p.backends.has(b.name))).map(({ name: b }) =>
    `${b} plan ${mean(b, "plan")}, playbook done ${mean(b, "done")} (wod-seat on the host ${
      mean(b, "host")
    }), seat results ${mean(b, "results")}`
  );
  return `prod_${phase}_apply_passes: ${ps.length} passes, ${fmt(total)} s in all, max ${
    fmt(Math.max(0, ...ps.map((p) => p.seconds)))
  } s${per.length ? `; mean s from a pass's start: ${per.join("; ")}` : ""}`;
}

async function purgeAll(): Promise<void> {
  const tasks = Array.from({ length: PER_BACKEND }, (_, i) => ({
    action: "PURGE" as const,
    workshop: WORKSHOP,
    seat: FIRST + i,
  }));
  const config = await loadConfig(root);
  await Promise.all(
    BACKENDS.map((b) =>
      runSeatTasks({ config, env: "local", backend: b.name, tasks }).catch((e) =>
        console.error(
          `warning: purge of seats ${FIRST}-${LAST} on ${b.name} failed: ${
            (e as Error).message.split("\n")[0]
          }`,
        )
      )
    ),
  );
}

/** 2000 recorded active seats (nothing pending, none due for a reminder) in one commit. */
async function recordNoopSeats(r: Rig, n: number): Promise<void> {
  const store = await openStore(root, "local", { privateDir: r.privateDir });
  try {
    const tree = (store as unknown as {
      tree: { transact: (m: string, f: () => Promise<Map<string, string>>) => Promise<boolean> };
    }).tree;
    const now = new Date().toISOString();
    const expires = new Date(Date.now() + 6 * 3_600_000).toISOString();
    await tree.transact(`bench: ${n} recorded seats`, () => {
      const files = new Map<string, string>();
      for (let i = 0; i < n; i++) {
        const seat = {
          backend: "jup9",
          seat: i + 1,
          workshop: WORKSHOP,
          status: "active",
          customer: `c${i}`,
          orders: [`bench-${i}`],
          allocated: now,
          expires,
          reminded: now,
          updated: now,
        };
        files.set(`state/local/jup9/${i + 1}.json`, JSON.stringify(seat, null, 2) + "\n");
      }
      return Promise.resolve(files);
    });
  } finally {
    await store.close();
  }
}

/** The no-op phase: the first pass after the seats were recorded, then a nudged steady-state pass. */
async function noop(r: Rig): Promise<LogLine[]> {
  await recordNoopSeats(r, NOOP);
  const passOf = async (why: string) => {
    for (let i = 0; i < 1200; i++) {
      await sleep(100);
      const p = (await r.log()).find((x) => x.event === "pass" && x.why === why);
      if (p) return p;
    }
    throw new Error(`The reconciler made no ${why} pass after the ${NOOP} seats were recorded`);
  };
  // The reconciler notices the new tip and makes one pass with nothing to apply (it also checks the
  // new files out); a nudge then makes the steady-state pass (the figure).
  const first = await passOf("state-changed");
  await fetch(`http://127.0.0.1:${r.health}/wake`, { method: "POST" }).then((x) => x.body?.cancel());
  return [first, await passOf("wake")];
}

const open: Rig[] = [];
/** Runs one phase in a fresh rig; `fn` gets the rig, the result comes with the reconciler's log. */
async function phase<T>(
  name: string,
  mode: "reconciler" | "loop",
  fn: (r: Rig) => Promise<T>,
): Promise<[T, LogLine[]]> {
  const r = await rig(name, mode);
  open.push(r);
  let result: T;
  try {
    result = await fn(r);
  } finally {
    await closeRig(open.pop()!);
  }
  // Read once the reconciler stopped: it finishes the running pass first (the last credentials email
  // goes out before its pass ends).
  return [result, await r.log()];
}
try {
  const out: string[] = [];
  if (SEQ > 0) {
    const [lat, log] = await phase("prod-seq", "reconciler", (r) => sequential(r, SEQ, "prod", true));
    out.push(`prod_order_to_ready_p50_s: ${fmt(quantile(lat, 0.5))} s`);
    out.push(`prod_order_to_ready_p95_s: ${fmt(quantile(lat, 0.95))} s`);
    out.push(passesLine("seq", log));
    await purgeAll();
  }
  if (BURST > 0) {
    const [all, log] = await phase("prod-burst", "reconciler", (r) => burst(r, BURST));
    out.push(`prod_burst${BURST}_all_ready_s: ${fmt(all)} s`);
    out.push(passesLine(`burst${BURST}`, log));
    await purgeAll();
  }
  if (NOOP > 0) {
    const [[first, steady]] = await phase("prod-noop", "reconciler", noop);
    out.push(`prod_noop_reconcile_${NOOP}_s: ${fmt(steady.seconds ?? NaN)} s`);
    out.push(`prod_first_pass_after_${NOOP}_recorded_s: ${fmt(first.seconds ?? NaN)} s`);
  }
  if (LOCAL_SEQ > 0) {
    const [lat] = await phase("local-seq", "loop", (r) => sequential(r, LOCAL_SEQ, "local", false));
    out.push(`local_order_to_ready_p50_s: ${fmt(quantile(lat, 0.5))} s`);
  }
  for (const l of out) console.log(l);
  console.log(
    `shape: ${SEQ} single orders (jup1 and jup2 in turn), a burst of ${BURST} over jup1 and jup2, ` +
      `a no-op pass over ${NOOP} seats; backends jup1 and jup2 and the control host ${ctl.name} ` +
      `(${ctl.host}) each in its own network namespace; state remote a bare repository on ${ctl.name} ` +
      `over SSH; wod listen and wod reconcile on this machine (root network namespace), not on ` +
      `${ctl.name}; baseline ${LOCAL_SEQ} single orders on jup1 with the demo's apply loop and a ` +
      `local-path state remote`,
  );
} finally {
  for (const r of open) await closeRig(r).catch(() => {});
  await purgeAll();
  await onCtl(ctl, ["rm", "-rf", CTL_DIR]).catch(() => {});
  await sink.close();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
