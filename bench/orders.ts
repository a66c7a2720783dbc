// Recording orders into a local bare git remote: 1000 orders batched (100 per commit, as the mail
// listener drains its spool) against the baseline of one commit per order, in the same run.
// Prints `name: value unit` lines.
import { git, initBare } from "../scripts/common/git.ts";
import type { Order } from "../scripts/config/types.gen.ts";
import { openStore } from "../scripts/state/store.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const N = Number(Deno.env.get("WOD_BENCH_ORDERS") ?? 1000);
const BATCH = 100;

function orders(tag: string): Order[] {
  const received = new Date().toISOString();
  return Array.from({ length: N }, (_, i) => ({
    id: `${tag}-${i}`,
    action: "CREATE" as const,
    env: "local",
    backend: "jup1",
    workshop: "WKSHP-Shell101",
    seats: [1000 + i, 1000 + i] as [number, number],
    customer: `c${i}`,
    source: "cli" as const,
    received,
  }));
}

async function timed(batch: number, tag: string): Promise<{ perS: number; commits: number }> {
  const remote = await Deno.makeTempDir({ prefix: "wod-bench-remote-" });
  try {
    await initBare(remote);
    const store = await openStore(ROOT, "local", { kind: "git", remote, branch: "state" });
    const list = orders(tag);
    const t0 = performance.now();
    for (let i = 0; i < list.length; i += batch) {
      const r = await store.recordOrders(list.slice(i, i + batch));
      if (r.recorded.length !== Math.min(batch, list.length - i)) throw new Error("orders lost in the bench");
    }
    const s = (performance.now() - t0) / 1000;
    await store.close();
    const commits = Number(
      (await git(["rev-list", "--count", "state"], { cwd: remote })).stdout.trim(),
    );
    return { perS: list.length / s, commits };
  } finally {
    await Deno.remove(remote, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const batched: number[] = [];
let batchedCommits = 0;
for (let rep = 0; rep < 3; rep++) {
  const r = await timed(BATCH, `b${rep}`);
  batched.push(r.perS);
  batchedCommits = r.commits;
}
const single = await timed(1, "s");
const b = median(batched);
console.log(
  `orders_batched_per_s: ${
    b.toFixed(1)
  } orders/s (${N} orders, ${BATCH} per commit, ${batchedCommits} commits, median of 3)`,
);
console.log(
  `orders_one_commit_each_per_s: ${single.perS.toFixed(1)} orders/s (${N} orders, ${single.commits} commits)`,
);
console.log(`orders_batched_speedup: ${(b / single.perS).toFixed(1)} x`);
