// Seat creation on the shared sandbox: 100 seats in ONE ansible-playbook run (our way) against one
// run per seat (the original platform's way), measured in the same run on a sample of 5 seats.
// Prints `seats_create_100_s`, `seats_create_sequential_per_seat_s` and derived figures, and
// `seats_create_200_two_backends_s`: 100 seats on each of the sandbox's two hosts (jup1, jup2), the two
// backend runs started together as `wod apply` runs them, against the one-backend batch of the same run.
// Seats 201-305 of a temp repo whose `local` pools are [1, 400], so it never touches the seats other
// areas' tests use on the shared sandbox (1-120); the accounts are created on the fly.
import { join } from "node:path";
import { ensureSandboxHosts } from "../scripts/backend/sandbox.ts";
import { runSeatTasks, type SeatAction } from "../scripts/backend/seats.ts";
import { loadConfig } from "../scripts/config/load.ts";

const repo = new URL("../", import.meta.url).pathname;
const root = await Deno.makeTempDir({ prefix: "wod-bench-seats-" });
const WORKSHOP = "WKSHP-Shell101";
const BATCH = Number(Deno.env.get("WOD_BENCH_SEATS") ?? 100);
const SAMPLE = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timed(
  action: SeatAction,
  seats: number[],
  startServers = true,
  backend = "jup1",
): Promise<number> {
  const t0 = performance.now();
  const res = await runSeatTasks({
    config: await loadConfig(root),
    env: "local",
    backend,
    tasks: seats.map((seat) => ({ action, workshop: WORKSHOP, seat })),
    startServers,
  });
  const secs = (performance.now() - t0) / 1000;
  const bad = res.filter((r) => !r.ok);
  if (bad.length) {
    throw new Error(`${bad.length} ${action} failed, first: seat ${bad[0].seat}: ${bad[0].error}`);
  }
  return secs;
}

const hosts = await ensureSandboxHosts((l) => console.error(l));
const second = hosts[1]?.name;
await Deno.mkdir(join(root, "workshops", WORKSHOP), { recursive: true });
await Deno.mkdir(join(root, "environments"));
for await (const e of Deno.readDir(join(repo, "workshops", WORKSHOP))) {
  if (e.isFile) {
    await Deno.copyFile(join(repo, "workshops", WORKSHOP, e.name), join(root, "workshops", WORKSHOP, e.name));
  }
}
const env = (await Deno.readTextFile(join(repo, "environments/local.yaml"))).replace(
  /students: \[1, 120\]/g,
  "students: [1, 400]",
);
if (!env.includes("students: [1, 400]")) {
  throw new Error("environments/local.yaml has no `students: [1, 120]` line");
}
await Deno.writeTextFile(join(root, "environments/local.yaml"), env);
const batch = Array.from({ length: BATCH }, (_, i) => 201 + i);
const sample = Array.from({ length: SAMPLE }, (_, i) => 201 + BATCH + i);
try {
  // Warm-up (ssh master connection, caches), not measured.
  await timed("PURGE", [...batch, ...sample]);
  if (second) await timed("PURGE", batch, true, second);
  const perSeat: number[] = [];
  for (const seat of sample) perSeat.push(await timed("CREATE", [seat]));
  const batchSecs = await timed("CREATE", batch);
  const purgeSecs = await timed("PURGE", [...batch, ...sample]);
  // The same batch without asking the hub to start servers (they then start at first login).
  const noStartSecs = await timed("CREATE", batch, false);
  // Two backends at once: the batch on jup1 and on the second host, runs started together.
  let twoSecs: number | undefined;
  if (second) {
    await timed("PURGE", batch);
    const t0 = performance.now();
    await Promise.all([timed("CREATE", batch), timed("CREATE", batch, true, second)]);
    twoSecs = (performance.now() - t0) / 1000;
  }
  const seq = median(perSeat);
  console.log(`seats_create_${BATCH}_s: ${batchSecs.toFixed(1)} s`);
  console.log(`seats_create_sequential_per_seat_s: ${seq.toFixed(2)} s`);
  console.log(`seats_create_batch_per_seat_s: ${(batchSecs / BATCH).toFixed(3)} s`);
  console.log(`seats_create_sequential_${BATCH}_estimate_s: ${(seq * BATCH).toFixed(0)} s`);
  console.log(`seats_batch_speedup: ${((seq * BATCH) / batchSecs).toFixed(1)} x`);
  console.log(`seats_purge_${BATCH + SAMPLE}_s: ${purgeSecs.toFixed(1)} s`);
  console.log(`seats_create_${BATCH}_no_server_start_s: ${noStartSecs.toFixed(1)} s`);
  if (twoSecs !== undefined) {
    console.log(`seats_create_${2 * BATCH}_two_backends_s: ${twoSecs.toFixed(1)} s`);
    console.log(`seats_two_backends_vs_one_ratio: ${(twoSecs / batchSecs).toFixed(2)} x`);
  } else console.error("seats: the sandbox has one host; no two-backend figure");
} finally {
  await timed("PURGE", [...batch, ...sample]).catch((e) => console.error(`cleanup: ${e}`));
  if (second) await timed("PURGE", batch, true, second).catch((e) => console.error(`cleanup: ${e}`));
  await Deno.remove(root, { recursive: true });
}
