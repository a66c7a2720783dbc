// Bench: the production shape on this machine. `wod listen` and `wod reconcile` run as processes (the
// control host's two services; the listener nudges the reconciler through POST /wake); the state
// remote is a bare git repository reached by a local path (not over SSH: said in the output); orders
// are the original front end's raw bytes (scripts/orders/send.ts sendOriginalOrder); the backend is the
// single sandbox host (the multi-host sandbox is not wired here yet); credentials are caught by the
// SMTP sink. Prints:
//   prod_order_to_ready_p50_s / _p95_s   BENCH_PROD_SEQ (20) single orders, one after another
//                                        (raw order sent -> credentials email in the sink)
//   prod_burst<N>_all_ready_s            BENCH_PROD_BURST (50: the seats this bench may use) orders at once
//   prod_noop_reconcile_2000_s           one reconcile pass (expiry + apply, nothing pending) over 2000
//                                        recorded seats (timed by the reconciler's own "pass" event)
// and the baseline from the same run: local_order_to_ready_p50_s, BENCH_LOCAL_SEQ (20) single orders
// through today's single-host path (the listener + the in-process apply loop of scripts/demo/).
// Seats 71-120 of the shared sandbox (docs/testbed.md: only when the bench runs alone); purged at the
// end. Needs root (the sandbox). Goals: p50 <= 5 s, burst of 100 <= 30 s, no-op over 2000 <= 5 s.
import { join } from "node:path";
import { stringify } from "yaml";
import { exec } from "../scripts/common/exec.ts";
import { ensureSandbox } from "../scripts/backend/sandbox.ts";
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
const BURST = num("BENCH_PROD_BURST", 50);
const NOOP = num("BENCH_PROD_NOOP_SEATS", 2000);
const FIRST = 71, LAST = 120, WORKSHOP = "WKSHP-Shell101";
const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const WOD = join(REPO, "scripts", "wod.ts");

if (Deno.uid() !== 0) {
  console.error("error: bench production needs root (it runs the sandbox backend)");
  Deno.exit(1);
}
if (Math.max(SEQ, LOCAL_SEQ, BURST) > LAST - FIRST + 1) {
  console.error(`error: at most ${LAST - FIRST + 1} orders per phase (seats ${FIRST}-${LAST})`);
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
await ensureSandbox((l) => console.error(`sandbox: ${l}`));
const sink = await startSmtpSink(join(tmp, "sink"));
const { identity, recipient } = await newIdentity();

/** When (ms) the first email to `addr` reached the sink. */
async function deliveredAt(addr: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for await (const e of Deno.readDir(sink.dir)) {
      if (!e.name.endsWith(".eml")) continue;
      const file = join(sink.dir, e.name);
      if (new RegExp(`^X-Sink-To: ${addr.replace(/\./g, "\\.")}$`, "m").test(await Deno.readTextFile(file))) {
        return (await Deno.stat(file)).mtime!.getTime();
      }
    }
    if (Date.now() > end) throw new Error(`No credentials email for ${addr} within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

interface Rig {
  port: number;
  health: number;
  privateDir: string;
  remote: string;
  procs: ProcRecord[];
  loop?: ApplyLoop;
  passes: () => Promise<{ why: string; seconds: number }[]>;
}

/** A fresh state remote and overlay, the listener, and the reconciler (or the demo's apply loop). */
async function rig(name: string, mode: "reconciler" | "loop"): Promise<Rig> {
  const dir = join(tmp, name);
  const remote = join(dir, "state.git");
  const privateDir = join(dir, "private");
  await Deno.mkdir(join(privateDir, "environments"), { recursive: true });
  await exec("git", ["init", "-q", "--bare", remote]);
  const port = freePort(true);
  const health = freePort();
  await Deno.writeTextFile(
    join(privateDir, "environments", "local.yaml"),
    stringify({
      name: "local",
      backends: [{ name: "jup1", ranges: { [WORKSHOP]: [FIRST, LAST] } }],
      orders: {
        listen: `127.0.0.1:${port}`,
        ...(mode === "reconciler" ? { reconciler_wake: `http://127.0.0.1:${health}/wake` } : {}),
      },
      mail: {
        from: "wod-bench@localhost",
        smtp_host: "127.0.0.1",
        smtp_port: sink.port,
        send_credentials: true,
      },
      seal: { recipients: [recipient] },
      state: { store: "git", remote, branch: "state" },
    }),
  );
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
      env: { WOD_ROOT: root, WOD_AGE_IDENTITY: identity },
    });
  const procs = [start("listener", ["listen", "--health", "none", "--spool", join(dir, "spool")])];
  let loop: ApplyLoop | undefined;
  if (mode === "reconciler") {
    procs.push(start("reconciler", ["reconcile", "--health", `127.0.0.1:${health}`]));
  } else loop = await startApplyLoop({ root, env: "local", privateDir, identities: [identity] });
  const r: Rig = {
    port,
    health,
    privateDir,
    remote,
    procs,
    loop,
    passes: async () =>
      (await Deno.readTextFile(join(dir, "reconciler.log")).catch(() => "")).split("\n")
        .filter((l) => l.includes('"event":"pass"')).map((l) => JSON.parse(l)),
  };
  // Ready: the listener answers, the reconciler holds the lease.
  for (let i = 0;; i++) {
    const ok = await Deno.connect({ hostname: "127.0.0.1", port }).then(
      (c) => (c.close(), true),
      () => false,
    );
    const held = mode === "loop" || await fetch(`http://127.0.0.1:${health}/health`)
      .then((x) => x.json()).then((h) => h.lease?.held === true, () => false);
    if (ok && held) break;
    if (i > 600) throw new Error(`The ${name} rig did not come up (logs in ${dir})`);
    await sleep(100);
  }
  return r;
}

async function closeRig(r: Rig): Promise<void> {
  await r.loop?.stop();
  for (const p of r.procs.reverse()) await stopProcess(p, 60_000);
}

function order(r: Rig, seat: number, addr: string): Promise<number> {
  return sendOriginalOrder(r.port, {
    helo: "api-db.localhost",
    from: "wodadmin@localhost",
    to: "wodadmin@localhost",
    subject: `CREATE ${seat} ${5000 + seat} ${addr}`,
    body: WORKSHOP,
  }).then(() => Date.now());
}

async function sequential(r: Rig, n: number, tag: string): Promise<number[]> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const addr = `${tag}${FIRST + i}@example.org`;
    const sent = await order(r, FIRST + i, addr);
    lat.push((await deliveredAt(addr, 180_000) - sent) / 1000);
  }
  return lat;
}

async function purgeAll(): Promise<void> {
  const tasks = Array.from({ length: LAST - FIRST + 1 }, (_, i) => ({
    action: "PURGE" as const,
    workshop: WORKSHOP,
    seat: FIRST + i,
  }));
  await runSeatTasks({ config: await loadConfig(root), env: "local", backend: "jup1", tasks }).catch((e) =>
    console.error(`warning: purge of seats ${FIRST}-${LAST} failed: ${(e as Error).message.split("\n")[0]}`)
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

const open: Rig[] = [];
/** Runs one phase in a fresh rig (a phase with its knob at 0 is skipped). */
async function phase<T>(name: string, mode: "reconciler" | "loop", fn: (r: Rig) => Promise<T>): Promise<T> {
  const r = await rig(name, mode);
  open.push(r);
  try {
    return await fn(r);
  } finally {
    await closeRig(open.pop()!);
  }
}
try {
  const out: string[] = [];
  if (SEQ > 0) {
    const lat = await phase("prod-seq", "reconciler", (r) => sequential(r, SEQ, "prod"));
    out.push(`prod_order_to_ready_p50_s: ${fmt(quantile(lat, 0.5))} s`);
    out.push(`prod_order_to_ready_p95_s: ${fmt(quantile(lat, 0.95))} s`);
    await purgeAll();
  }
  if (BURST > 0) {
    const all = await phase("prod-burst", "reconciler", async (r) => {
      const seats = Array.from({ length: BURST }, (_, i) => FIRST + i);
      const t0 = Date.now();
      await Promise.all(seats.map((s) => order(r, s, `burst${s}@example.org`)));
      const done = await Promise.all(seats.map((s) => deliveredAt(`burst${s}@example.org`, 600_000)));
      return (Math.max(...done) - t0) / 1000;
    });
    out.push(`prod_burst${BURST}_all_ready_s: ${fmt(all)} s`);
    await purgeAll();
  }
  if (NOOP > 0) {
    // The reconciler notices the new tip and makes one pass with nothing to apply: its duration.
    // The first pass after they were recorded also checks the 2000 new files out; a nudge then makes
    // the steady-state pass (the figure).
    const [first, steady] = await phase("prod-noop", "reconciler", async (r) => {
      await recordNoopSeats(r, NOOP);
      const passOf = async (why: string) => {
        for (let i = 0; i < 1200; i++) {
          await sleep(100);
          const p = (await r.passes()).find((x) => x.why === why);
          if (p) return p;
        }
        throw new Error(`The reconciler made no ${why} pass after the ${NOOP} seats were recorded`);
      };
      const first = await passOf("state-changed");
      await fetch(`http://127.0.0.1:${r.health}/wake`, { method: "POST" }).then((x) => x.body?.cancel());
      return [first, await passOf("wake")];
    });
    out.push(`prod_noop_reconcile_${NOOP}_s: ${fmt(steady.seconds)} s`);
    out.push(`prod_first_pass_after_${NOOP}_recorded_s: ${fmt(first.seconds)} s`);
  }
  if (LOCAL_SEQ > 0) {
    const lat = await phase("local-seq", "loop", (r) => sequential(r, LOCAL_SEQ, "local"));
    out.push(`local_order_to_ready_p50_s: ${fmt(quantile(lat, 0.5))} s`);
  }
  for (const l of out) console.log(l);
  console.log(
    `shape: ${SEQ} and ${LOCAL_SEQ} single orders, a burst of ${BURST} on one sandbox backend; state remote a bare repository by local path (not SSH)`,
  );
} finally {
  for (const r of open) await closeRig(r).catch(() => {});
  await purgeAll();
  await sink.close();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
