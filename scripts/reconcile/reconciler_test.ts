// The reconciler's control loop with passes that only record when they run (the real apply is
// tested in scripts/state and end to end on the sandbox): a nudge applies at once, nudges arriving
// together make one pass, a new state tip is noticed without a nudge, expiry runs on its interval,
// failures back off exponentially up to the cap, stop finishes the running pass and releases the
// lease, and two reconcilers on one lease never act at the same time; the second takes over once the
// first dies and its lease expires.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { type Lease, type PassResult, Reconciler, type ReconcilerDeps } from "./reconciler.ts";
import { serveReconciler } from "./http.ts";

/** A lease shared in memory by several reconcilers (the real one lives on the state remote). */
class MemoryLease {
  holder?: string;
  expires = 0;
  handle(name: string): Lease {
    return {
      acquire: (ttl) => {
        const now = Date.now();
        if (this.holder === undefined || this.holder === name || this.expires <= now) {
          this.holder = name;
          this.expires = now + ttl;
          return Promise.resolve(true);
        }
        return Promise.resolve(false);
      },
      release: () => {
        if (this.holder === name) this.holder = undefined;
        return Promise.resolve();
      },
      describe: () =>
        Promise.resolve(
          this.holder ? { holder: this.holder, expires: new Date(this.expires).toISOString() } : undefined,
        ),
    };
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await tick(5);
  }
}

function fakeDeps(over: Partial<ReconcilerDeps> & { lease: Lease }) {
  const calls = { apply: 0, expire: 0 };
  let tip = "t0";
  const deps: ReconcilerDeps = {
    applyOnce: () => {
      calls.apply++;
      return Promise.resolve({ applied: 1, failed: 0, orders: [`o${calls.apply}`] });
    },
    expireOnce: () => {
      calls.expire++;
      return Promise.resolve({ recorded: [] });
    },
    stateTip: () => Promise.resolve(tip),
    seatCounts: () => Promise.resolve({ byStatus: { active: 2, free: 8 }, pending: 0 }),
    ...over,
  };
  return { deps, calls, setTip: (t: string) => (tip = t) };
}

const FAST = {
  fetchIntervalMs: 30,
  expireIntervalMs: 60_000,
  leaseTtlMs: 300,
  batchWindowMs: 40,
  backoffBaseMs: 50,
  backoffMaxMs: 200,
};

Deno.test("reconciler: a nudge applies at once, and nudges that arrive together make one pass", async () => {
  const lease = new MemoryLease();
  const { deps, calls } = fakeDeps({ lease: lease.handle("a") });
  const r = new Reconciler(deps, FAST);
  r.start();
  try {
    await until(() => calls.apply === 1); // the start pass (first tip seen)
    r.wake();
    r.wake();
    r.wake();
    await until(() => calls.apply === 2);
    await tick(150);
    assertEquals(calls.apply, 2, "three nudges within the batch window make one pass");
  } finally {
    await r.stop();
  }
  assertEquals(lease.holder, undefined, "stop releases the lease");
});

Deno.test("reconciler: without a nudge, a new tip of the state remote is noticed on the next check", async () => {
  const lease = new MemoryLease();
  const { deps, calls, setTip } = fakeDeps({ lease: lease.handle("a") });
  const r = new Reconciler(deps, FAST);
  r.start();
  try {
    await until(() => calls.apply === 1);
    await tick(100);
    assertEquals(calls.apply, 1, "an unchanged tip starts no pass");
    setTip("t1");
    await until(() => calls.apply === 2, 500);
  } finally {
    await r.stop();
  }
});

Deno.test("reconciler: expiry runs on its interval, before the apply of that pass", async () => {
  const lease = new MemoryLease();
  const order: string[] = [];
  const { deps } = fakeDeps({
    lease: lease.handle("a"),
    expireOnce: () => {
      order.push("expire");
      return Promise.resolve({ recorded: ["exp-1"] });
    },
    applyOnce: () => {
      order.push("apply");
      return Promise.resolve({ applied: 0, failed: 0, orders: [] });
    },
  });
  const r = new Reconciler(deps, { ...FAST, expireIntervalMs: 120 });
  r.start();
  try {
    await until(() => order.filter((x) => x === "expire").length >= 3, 2000);
  } finally {
    await r.stop();
  }
  assertEquals(order.slice(0, 2), ["expire", "apply"]);
  assertMatch(r.metrics(), /^wod_reconcile_expiry_orders_total [3-9]$/m);
});

Deno.test("reconciler: failed passes back off exponentially up to the cap, then succeed and reset", async () => {
  const lease = new MemoryLease();
  const at: number[] = [];
  const delays: number[] = [];
  let fail = 5;
  const { deps } = fakeDeps({
    lease: lease.handle("a"),
    applyOnce: () => {
      at.push(Date.now());
      if (fail-- > 0) return Promise.reject(new Error("backend unreachable"));
      return Promise.resolve({ applied: 1, failed: 0, orders: [] });
    },
    log: (event, f) => {
      if (event === "retry-scheduled") delays.push(f!.in_ms as number);
    },
  });
  const r = new Reconciler(deps, FAST);
  r.start();
  try {
    await until(() => at.length === 6, 10_000);
    const h = await r.health();
    assertEquals([h.lastResult, h.consecutiveFailures], ["ok", 0]);
  } finally {
    await r.stop();
  }
  assertEquals(delays, [50, 100, 200, 200, 200], "doubling from 50 ms, capped at 200 ms");
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  gaps.forEach((g, i) =>
    assert(g >= delays[i] - 5, `retry ${i + 1} came after ${g} ms, before its ${delays[i]} ms`)
  );
  assertMatch(r.metrics(), /^wod_reconcile_passes_total\{result="error"\} 5$/m);
});

Deno.test("reconciler: stop waits for the running pass to finish", async () => {
  const lease = new MemoryLease();
  let finished = false;
  const { deps, calls } = fakeDeps({
    lease: lease.handle("a"),
    applyOnce: async (): Promise<PassResult> => {
      calls.apply++;
      await tick(200);
      finished = true;
      return { applied: 20, failed: 0, orders: [] };
    },
  });
  const r = new Reconciler(deps, FAST);
  r.start();
  await until(() => r.running);
  await r.stop();
  assert(finished, "stop returned before the pass finished");
  assertEquals(lease.holder, undefined);
});

Deno.test("reconciler: two on one lease never overlap; the second takes over when the first dies", async () => {
  const lease = new MemoryLease();
  let overlap = false;
  let active = 0;
  const ran: string[] = [];
  const mk = (name: string) => {
    const { deps } = fakeDeps({
      lease: lease.handle(name),
      applyOnce: async () => {
        active++;
        if (active > 1) overlap = true;
        ran.push(name);
        await tick(20);
        active--;
        return { applied: 1, failed: 0, orders: [] };
      },
    });
    return new Reconciler(deps, { ...FAST, leaseTtlMs: 1500 });
  };
  const a = mk("a");
  const b = mk("b");
  a.start();
  await until(() => ran.includes("a"));
  b.start();
  let bAcquiredEarly = false;
  for (let i = 0; i < 10; i++) {
    if (lease.holder === "b") bAcquiredEarly = true;
    a.wake();
    b.wake();
    await tick(30);
  }
  assert(!ran.includes("b") && !bAcquiredEarly, "b acted while a held the lease");
  assertEquals((await b.health()).status, "standby");
  await a.abandon(); // killed: the lease is not released
  const expiresOfA = lease.expires;
  await until(() => ran.includes("b"), 10_000);
  assertEquals(lease.holder, "b");
  assert(lease.expires > expiresOfA, "b holds a lease renewed after a's expired");
  await b.stop();
  assert(!overlap, "two passes ran at the same time");
});

Deno.test("reconciler HTTP: /health, /metrics in Prometheus text format, and POST /wake from loopback", async () => {
  const lease = new MemoryLease();
  const { deps, calls } = fakeDeps({ lease: lease.handle("a") });
  const r = new Reconciler(deps, FAST);
  const http = serveReconciler(r, { hostname: "127.0.0.1", port: 0 });
  r.start();
  try {
    await until(() => calls.apply === 1);
    const h = await fetch(`${http.url}/health`).then((x) => x.json());
    assertEquals([h.status, h.lease.held, h.lease.holder, h.pending], ["ok", true, "a", 0]);
    const woke = await fetch(`${http.url}/wake`, { method: "POST" });
    assertEquals(woke.status, 202);
    await until(() => calls.apply === 2);
    const m = await fetch(`${http.url}/metrics`).then((x) => x.text());
    for (const line of m.trim().split("\n")) {
      assertMatch(line, /^(# (HELP|TYPE) wod_[a-z_]+ .+|wod_[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.e+]+)$/);
    }
    assertMatch(m, /^wod_reconcile_seats\{status="active"\} 2$/m);
    assertMatch(m, /^wod_reconcile_apply_duration_seconds_count 2$/m);
    assertMatch(m, /^wod_reconcile_lease_held 1$/m);
    assertEquals(await fetch(`${http.url}/nope`).then((x) => x.body?.cancel().then(() => x.status)), 404);
  } finally {
    await r.stop();
    await http.server.shutdown();
  }
});
