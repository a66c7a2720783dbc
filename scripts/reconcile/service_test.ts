// The reconcile service's own parts over a real git remote and the front-end API test server: failed
// front-end callbacks are kept in state as pending deliveries and retried until delivered (apply and
// the running service), the tip the reconciler watches ignores lease renewals, and log lines name
// their orders and never an address. The backend run is an in-process runner with the
// runSeatTasks signature (the real playbook: service_e2e_test.ts).
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { DENO_CHILD_INHERIT, exec, spawn } from "../common/exec.ts";
import { order, stateFixture, wod } from "../testing/state_fixture.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";
import { serveLoopback } from "../testing/serve.ts";
import { newIdentity } from "../state/seal.ts";
import { openStore } from "../state/store.ts";
import { environmentLease, readLease } from "../state/lease.ts";
import { readDeliveries } from "../state/deliveries.ts";
import { loadConfig } from "../config/load.ts";
import { apply, type RunSeatTasks } from "./apply.ts";
import { lineLogger, startService } from "./service.ts";
import { stateTipWatcher } from "./tip.ts";

/** The front-end test server behind a switch: while `down`, every call answers 503. */
async function flakyFrontend() {
  const fe = await startFrontendServer();
  const state = { down: false };
  const { server, url } = await serveLoopback(async (req) => {
    if (state.down) {
      await req.body?.cancel();
      return new Response("down for maintenance", { status: 503 });
    }
    const u = new URL(req.url);
    return await fetch(fe.url + u.pathname + u.search, {
      method: req.method,
      headers: req.headers,
      body: req.body ? await req.arrayBuffer() : undefined,
    });
  });
  return { fe, url, state, close: async () => (await server.shutdown(), await fe.close()) };
}

const passwords: string[] = [];
const runner: RunSeatTasks = (o) =>
  Promise.resolve(o.tasks.map((t) => {
    const password = crypto.randomUUID();
    passwords.push(password);
    return { ...t, ok: true, password, completion: t.action === "CLEANUP" ? 10 : undefined };
  }));

Deno.test("apply: a failed PURGE callback is kept as a pending delivery (password sealed), shown by wod state, retried with backoff until delivered", async () => {
  const front = await flakyFrontend();
  const { identity, recipient } = await newIdentity();
  const fx = await stateFixture({
    extra: {
      frontend: { api_url: front.url, username_env: "FE_USER", password_env: "FE_PASS" },
      seal: { recipients: [recipient] },
    },
  });
  const vars: Record<string, string> = { FE_USER: front.fe.username, FE_PASS: front.fe.password };
  let clock = Date.now();
  const logs: string[] = [];
  const common = {
    root: fx.root,
    env: "local",
    identities: [identity],
    getenv: (k: string) => vars[k],
    runSeatTasks: runner,
    now: () => new Date(clock),
    log: (l: string) => logs.push(l),
  };
  const store = await openStore(fx.root, "local");
  try {
    await store.recordOrders([order("c44", "CREATE", 44, { customer: "144" })]);
    await apply(common);
    front.state.down = true;
    await store.recordOrders([order("p44", "PURGE", 44)]);
    const r1 = await apply(common);
    assertEquals(
      r1.outcomes.map((o) => [o.action, o.ok]),
      [["PURGE", true]],
      "the seat action itself succeeded",
    );
    assertEquals(r1.deliveries?.pending, 1);
    assertEquals((await store.readSeats())[0].status, "free");
    let pending = await readDeliveries(store);
    assertEquals(pending.map((d) => [d.id, d.action, d.seat, d.attempts]), [["p44:PURGE", "PURGE", 44, 1]]);
    assertMatch(pending[0].last_error, /503/);
    assert(pending[0].password_sealed?.includes("AGE ENCRYPTED"), "the password is kept sealed");
    const purgePassword = passwords[passwords.length - 1];

    const shown = await wod(fx.root, ["state", "--env", "local", "--json"]);
    const st = JSON.parse(shown.stdout);
    assertEquals(st.deliveries.map((d: { id: string }) => d.id), ["p44:PURGE"]);
    assert(!shown.stdout.includes("AGE ENCRYPTED"), "wod state leaves the sealed password out");
    assertMatch(
      (await wod(fx.root, ["state", "--env", "local"])).stdout,
      /Pending deliveries to the front end: 1/,
    );

    // Not due yet: nothing to do. Due (10 s later) but still down: attempt 2, backoff doubles.
    const quiet = await apply(common);
    assertEquals([quiet.committed, quiet.deliveries], [false, undefined]);
    clock += 11_000;
    const r2 = await apply(common);
    assertEquals([r2.deliveries?.failed, r2.deliveries?.pending], [1, 1]);
    pending = await readDeliveries(store);
    assertEquals(pending[0].attempts, 2);
    assertEquals(Date.parse(pending[0].next_try) - clock, 20_000);

    // The front end is back: delivered with the purge's password, and the list is empty again.
    front.state.down = false;
    clock += 21_000;
    const r3 = await apply(common);
    assertEquals(r3.deliveries?.delivered, ["p44:PURGE"]);
    assertEquals(await readDeliveries(store), []);
    assertEquals(front.fe.students.get("44"), { password: purgePassword, assigned: "false" });

    const clone = await Deno.makeTempDir();
    await exec("git", ["clone", "-q", "--mirror", fx.remote, clone]);
    const history = (await exec("git", ["log", "--all", "-p", "--format=%B"], { cwd: clone })).stdout;
    await Deno.remove(clone, { recursive: true });
    assert(history.includes("deliveries.json"), "the pending delivery was committed");
    assert(!history.includes(purgePassword), "the password is in the git history");
    assert(!logs.join("\n").includes(purgePassword), "the password is in the logs");
  } finally {
    await store.close();
    await front.close();
    await fx.cleanup();
  }
});

Deno.test("reconcile service: a callback failing while the front end is down shows in /health and /metrics and is delivered once it is back", async () => {
  const front = await flakyFrontend();
  const { identity, recipient } = await newIdentity();
  const fx = await stateFixture({
    extra: {
      frontend: { api_url: front.url, username_env: "FE_USER", password_env: "FE_PASS" },
      seal: { recipients: [recipient] },
    },
  });
  const vars: Record<string, string> = { FE_USER: front.fe.username, FE_PASS: front.fe.password };
  const events: Record<string, unknown>[] = [];
  const config = await loadConfig(fx.root);
  const store = await openStore(fx.root, "local");
  front.state.down = true;
  const service = await startService({
    root: fx.root,
    env: "local",
    config,
    health: { hostname: "127.0.0.1", port: 0 },
    log: (event, f) => events.push({ event, ...f }),
    identities: [identity],
    getenv: (k) => vars[k],
    runSeatTasks: runner,
    reconciler: { fetchIntervalMs: 200, backoffBaseMs: 200, backoffMaxMs: 2_000, leaseTtlMs: 5_000 },
  });
  try {
    await store.recordOrders([order("c45", "CREATE", 45, { customer: "145" }), order("p46", "CREATE", 46)]);
    service.reconciler.wake("test");
    const until = async <T>(what: string, f: () => Promise<T | undefined>, ms = 40_000) => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await f();
        if (v !== undefined) return v;
        assert(Date.now() < end, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // CREATE needs the front end: the seats fail and are retried; once up they are created.
    front.state.down = false;
    await until("both seats active", async () => {
      const s = await store.readSeats();
      return s.length === 2 && s.every((x) => x.status === "active") ? s : undefined;
    });
    front.state.down = true;
    await store.recordOrders([order("x45", "CLEANUP", 45, { customer: "145" })]);
    const health = await until("a pending delivery in /health", async () => {
      const h = await (await fetch(`${service.url}/health`)).json();
      return h.pendingDeliveries === 1 ? h : undefined;
    });
    assertEquals(health.lease.held, true);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    assertMatch(metrics, /wod_reconcile_pending_deliveries 1/);
    assertMatch(metrics, /wod_reconcile_deliveries_failed_total [1-9]/);
    front.state.down = false;
    await until("the delivery", async () => (await readDeliveries(store)).length === 0 ? true : undefined);
    assertEquals(front.fe.customers.get("145")?.active, "false");
    // Every log line about a seat names its order.
    const about45 = events.filter((e) => typeof e.message === "string" && /jup1\/45\b/.test(e.message));
    assert(about45.length > 0);
    for (const e of about45) assert(e.order || e.orders, `no order on ${JSON.stringify(e)}`);
  } finally {
    await service.stop();
    await store.close();
    await front.close();
    await fx.cleanup();
  }
});

Deno.test("reconcile tip: a lease renewal is not a change; a recorded order is", async () => {
  const fx = await stateFixture();
  const config = await loadConfig(fx.root);
  const store = await openStore(fx.root, "local", { config });
  const watcher = await stateTipWatcher(fx.root, "local", config.environments.get("local")!.value, store);
  try {
    assertEquals(await watcher.tip(), "empty");
    await store.recordOrders([order("t47", "CREATE", 47)]);
    const t1 = await watcher.tip();
    const lease = environmentLease(store);
    assert(await lease.acquire(60_000));
    assert(await lease.acquire(60_000), "renewed");
    assertEquals(await watcher.tip(), t1, "a lease commit changed the tip");
    await lease.release();
    assertEquals(await watcher.tip(), t1);
    await store.recordOrders([order("t48", "CREATE", 48)]);
    assert((await watcher.tip()) !== t1, "a new order did not change the tip");
  } finally {
    await watcher.close();
    await store.close();
    await fx.cleanup();
  }
});

Deno.test("reconcile logs: a line names the orders of the seats it is about, and no participant address", () => {
  const events: Record<string, unknown>[] = [];
  const orders = new Map([["jup1/40", ["o40"]], ["jup1/41", ["o41"]]]);
  const line = lineLogger((event, f) => events.push({ event, ...f }), "apply", orders);
  line("jup1: CREATE 40, CREATE 41");
  line("jup1/40 CREATE failed: credentials not delivered: 550 <someone@example.org> rejected");
  line("jup1/57: PURGE of order exp-1 pending delivery to the front end");
  line("Nothing pending in local: no backend run, no commit");
  assertEquals(events[0].orders, ["o40", "o41"]);
  assertEquals(events[1].order, "o40");
  assert(!JSON.stringify(events).includes("someone@example.org"), "an address is in the log");
  assertEquals(events[2].order, "exp-1");
  assertEquals(events[3].order, undefined);
});

Deno.test("wod reconcile: takes the lease, refuses a wod apply meanwhile, and on SIGTERM gives the lease back and exits 0", async () => {
  const fx = await stateFixture();
  const store = await openStore(fx.root, "local");
  const child = spawn(Deno.execPath(), [
    "run",
    "-A",
    new URL("../wod.ts", import.meta.url).pathname,
    "reconcile",
    "--env",
    "local",
    "--health",
    "127.0.0.1:0",
    // Only the first pass: the order recorded below stays pending (no backend run in this test).
    "--fetch-interval",
    "600",
    "--expire-interval",
    "600",
  ], {
    env: { WOD_ROOT: fx.root, NO_COLOR: "1" },
    inherit: DENO_CHILD_INHERIT,
    stdout: "piped",
    stderr: "piped",
  });
  const out = child.stdout.pipeThrough(new TextDecoderStream());
  let text = "";
  const reading = (async () => {
    for await (const chunk of out) text += chunk;
  })();
  try {
    for (let i = 0; !(await readLease(store)); i++) {
      assert(i < 300, `the reconciler took no lease:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assertMatch((await readLease(store))!.purpose, /reconcile local/);
    for (let i = 0; !text.includes('"event":"pass"'); i++) {
      assert(i < 300, `no first pass:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await store.recordOrders([order("l49", "CREATE", 49)]);
    const refused = await wod(fx.root, ["apply", "--env", "local"]);
    assertEquals(refused.code, 1);
    assertMatch(refused.stderr, /is leased by .*\(reconcile local\)/);
    child.kill("SIGTERM");
    const status = await child.status;
    await reading;
    assertEquals(status.code, 0, text);
    assertEquals(await readLease(store), undefined, "the lease was not given back");
    const events = text.trim().split("\n").map((l) => JSON.parse(l).event);
    assert(events.includes("stopping") && events.at(-1) === "reconciler-stopped", events.join(", "));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.stderr.cancel().catch(() => {});
    await store.close();
    await fx.cleanup();
  }
});
