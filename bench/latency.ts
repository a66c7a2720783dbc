// Bench: order-to-ready latency on the sandbox backend. Time from an order email accepted (the 250
// after DATA at `wod listen`) to the credentials email delivered (the SMTP sink wrote it), for
//   - BENCH_SEQ (20) orders one after another (the next is sent when the previous email arrived):
//     order_to_ready_p50_s, order_to_ready_p95_s;
//   - a burst of BENCH_BURST (50) orders sent at once: burst50_all_ready_s (first send to last email).
// The chain: SMTP (original order format) -> `wod listen` (a process: spool, fsync, commit to a local
// bare git remote) -> an in-process apply loop (scripts/demo/apply_loop.ts: apply as soon as the
// state remote has pending seats; pending orders are batched into ONE ansible run) -> ansible over
// SSH to the sandbox (account, notebooks, hub server) -> credentials email (nodemailer) -> sink.
// Baseline in the same run: the original's way, one ansible run per seat (runSeatTasks with one
// CREATE, BENCH_BASELINE_RUNS (5) times, median), and what 50 seats cost that way (50 x median).
//
// BENCH_BURST=0 and BENCH_BASELINE_RUNS=0 skip those phases (single orders only). The apply's own timing
// lines (read and plan, install check, backend run, deliveries; the playbook's seconds per task) are
// printed on stderr for every order: docs/production.md "Where the seconds of one order go".
//
// Uses seats 71-120 of the shared sandbox (docs/testbed.md: the bench may use them when run alone) and
// purges them at the end. Needs root (the sandbox). Goals: p50 <= 10 s, burst <= 60 s.
import { join } from "node:path";
import { stringify } from "yaml";
import { exec } from "../scripts/common/exec.ts";
import { initBare } from "../scripts/common/git.ts";
import { ensureSandbox } from "../scripts/backend/sandbox.ts";
import { runSeatTasks } from "../scripts/backend/seats.ts";
import { loadConfig } from "../scripts/config/load.ts";
import { sendMessage } from "../scripts/mail/testing.ts";
import { newIdentity } from "../scripts/state/seal.ts";
import { startSmtpSink } from "../scripts/testing/smtp_sink.ts";
import { type ApplyLoop, startApplyLoop } from "../scripts/demo/apply_loop.ts";
import {
  freePort,
  logTail,
  type ProcRecord,
  sleep,
  spawnDetached,
  stopProcess,
} from "../scripts/demo/procs.ts";

const SEQ = Number(Deno.env.get("BENCH_SEQ") ?? 20);
const BURST = Number(Deno.env.get("BENCH_BURST") ?? 50);
const BASE_RUNS = Number(Deno.env.get("BENCH_BASELINE_RUNS") ?? 5);
const FIRST = 71;
const LAST = 120;
const WORKSHOP = "WKSHP-Shell101";
const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

if (Deno.uid() !== 0) {
  console.error("error: bench latency needs root (it runs the sandbox backend)");
  Deno.exit(1);
}
if (SEQ > LAST - FIRST + 1 || BURST > LAST - FIRST + 1) {
  console.error(`error: at most ${LAST - FIRST + 1} orders per phase (seats ${FIRST}-${LAST})`);
  Deno.exit(1);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const fmt = (x: number) => x.toFixed(2);

const tmp = await Deno.makeTempDir({ prefix: "wod-bench-latency-" });
const root = join(tmp, "repo");
const { sink, identity, recipient } = await (async () => {
  try {
    await Deno.mkdir(root);
    for (const d of ["environments", "workshops"]) await exec("cp", ["-r", join(REPO, d), join(root, d)]);
    await ensureSandbox((l) => console.error(`sandbox: ${l}`));
    return { sink: await startSmtpSink(join(tmp, "sink")), ...await newIdentity() };
  } catch (err) {
    await Deno.remove(tmp, { recursive: true });
    throw err;
  }
})();

/** Delivery time (file mtime, ms) per recipient address, polled from the sink directory. */
const delivered = new Map<string, number>();
const seen = new Set<string>();
async function scanSink(): Promise<void> {
  for await (const e of Deno.readDir(sink.dir)) {
    if (!e.name.endsWith(".eml") || seen.has(e.name)) continue;
    const file = join(sink.dir, e.name);
    const text = await Deno.readTextFile(file);
    const to = /^X-Sink-To: (.*)$/m.exec(text)?.[1]?.trim();
    if (!to) continue;
    seen.add(e.name);
    delivered.set(to, (await Deno.stat(file)).mtime!.getTime());
  }
}
async function deliveredAt(addr: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (true) {
    await scanSink();
    const t = delivered.get(addr);
    if (t !== undefined) return t;
    if (Date.now() > end) throw new Error(`No credentials email for ${addr} within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

interface Rig {
  port: number;
  privateDir: string;
  loop: ApplyLoop;
  proc: ProcRecord;
}

/** A fresh state remote + overlay + `wod listen` + apply loop (each phase starts from free seats). */
async function rig(name: string): Promise<Rig> {
  const dir = join(tmp, name);
  const remote = join(dir, "state.git");
  await Deno.mkdir(join(dir, "private", "environments"), { recursive: true });
  await initBare(remote);
  const port = freePort(true);
  await Deno.writeTextFile(
    join(dir, "private", "environments", "local.yaml"),
    stringify({
      name: "local",
      backends: [{ name: "jup1", ranges: { [WORKSHOP]: [FIRST, LAST] } }],
      orders: { listen: `127.0.0.1:${port}` },
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
  const privateDir = join(dir, "private");
  const proc = spawnDetached("listener", [
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    join(REPO, "deno.json"),
    join(REPO, "scripts", "wod.ts"),
    "listen",
    "--env",
    "local",
    "--private",
    privateDir,
    "--listen",
    `127.0.0.1:${port}`,
    "--health",
    `127.0.0.1:${port + 1}`,
    "--spool",
    join(dir, "spool"),
    "--hostname",
    "localhost",
  ], { log: join(dir, "listener.log"), cwd: REPO, env: { WOD_ROOT: root } });
  const end = Date.now() + 60_000;
  while (true) {
    const ok = await fetch(`http://127.0.0.1:${port + 1}/health`).then((r) => {
      r.body?.cancel();
      return r.ok;
    }, () => false);
    if (ok) break;
    if (Date.now() > end) throw new Error(`The listener did not come up: ${await logTail(proc.log)}`);
    await sleep(100);
  }
  const loop = await startApplyLoop({
    root,
    env: "local",
    privateDir,
    identities: [identity],
    log: (l) => {
      if (/failed:|warning|apply loop|^seats\.yml|timings|hub servers/.test(l)) console.error(`apply: ${l}`);
    },
  });
  return { port, privateDir, loop, proc };
}

async function order(r: Rig, seat: number, addr: string): Promise<number> {
  const res = await sendMessage(r.port, {
    helo: "api-db.localhost",
    from: "wodadmin@localhost",
    to: "wodadmin@localhost",
    message: `Subject: CREATE ${seat} ${5000 + seat} ${addr}\n${WORKSHOP}\n`,
  });
  if (res.code !== 250) {
    throw new Error(`Order for seat ${seat} refused at ${res.stage}: ${res.code} ${res.text}`);
  }
  return Date.now();
}

async function closeRig(r: Rig): Promise<void> {
  await r.loop.stop();
  await stopProcess(r.proc);
}

const rigs: Rig[] = [];
try {
  // Baseline: one ansible run per seat (the original ran its whole create script per order).
  const base: number[] = [];
  for (let i = 0; i < BASE_RUNS; i++) {
    const t0 = performance.now();
    const [res] = await runSeatTasks({
      config: await loadConfig(root),
      env: "local",
      backend: "jup1",
      tasks: [{ action: "CREATE", workshop: WORKSHOP, seat: FIRST + i }],
    });
    if (!res?.ok) throw new Error(`Baseline CREATE of seat ${FIRST + i} failed: ${res?.error}`);
    base.push((performance.now() - t0) / 1000);
  }
  const baseMedian = base.length ? quantile(base, 0.5) : NaN;

  // Sequential orders.
  const seq = await rig("seq");
  rigs.push(seq);
  const lat: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const addr = `seq${FIRST + i}@example.org`;
    const accepted = await order(seq, FIRST + i, addr);
    lat.push((await deliveredAt(addr, 120_000) - accepted) / 1000);
  }
  await closeRig(seq);
  rigs.pop();
  const seqRuns = seq.loop.runs.length;

  console.log(`order_to_ready_p50_s: ${fmt(quantile(lat, 0.5))} s`);
  console.log(`order_to_ready_p95_s: ${fmt(quantile(lat, 0.95))} s`);
  console.log(`order_to_ready_max_s: ${fmt(Math.max(...lat))} s`);
  console.log(`order_to_ready_apply_runs: ${seqRuns} runs`);

  // Burst (BENCH_BURST=0: none, e.g. to time single orders only).
  let allReady = 0;
  if (BURST > 0) {
    const burst = await rig("burst");
    rigs.push(burst);
    const t0 = Date.now();
    const seats = Array.from({ length: BURST }, (_, i) => FIRST + i);
    const accepted = await Promise.all(seats.map((s) => order(burst, s, `burst${s}@example.org`)));
    const done = await Promise.all(seats.map((s) => deliveredAt(`burst${s}@example.org`, 300_000)));
    allReady = (Math.max(...done) - t0) / 1000;
    const burstLat = done.map((d, i) => (d - accepted[i]) / 1000);
    await closeRig(burst);
    rigs.pop();
    console.log(`burst${BURST}_all_ready_s: ${fmt(allReady)} s`);
    console.log(`burst${BURST}_order_to_ready_p50_s: ${fmt(quantile(burstLat, 0.5))} s`);
    console.log(`burst${BURST}_apply_runs: ${burst.loop.runs.length} runs`);
    console.log(`burst${BURST}_apply_total_s: ${fmt(burst.loop.runs.reduce((n, r) => n + r.seconds, 0))} s`);
  }
  if (base.length) {
    console.log(`baseline_ansible_run_1seat_s: ${fmt(baseMedian)} s`);
    console.log(`baseline_burst${BURST}_one_run_per_seat_s: ${fmt(baseMedian * BURST)} s`);
  }
  console.log(
    `goals: p50 <= 10 s ${quantile(lat, 0.5) <= 10 ? "met" : "MISSED"}, burst <= 60 s ${
      allReady <= 60 ? "met" : "MISSED"
    }`,
  );
} finally {
  for (const r of rigs) await closeRig(r).catch(() => {});
  // Free the seats on the shared sandbox (stops their hub servers) in one run.
  const purge = Array.from({ length: LAST - FIRST + 1 }, (_, i) => ({
    action: "PURGE" as const,
    workshop: WORKSHOP,
    seat: FIRST + i,
  }));
  await loadConfig(root).then((config) =>
    runSeatTasks({ config, env: "local", backend: "jup1", tasks: purge })
  ).catch((e) =>
    console.error(`warning: purge of seats ${FIRST}-${LAST} failed: ${(e as Error).message.split("\n")[0]}`)
  );
  await sink.close();
  await Deno.remove(tmp, { recursive: true });
}
