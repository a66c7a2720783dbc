// apply and expire over a real git remote, a real front-end API test server and a real SMTP sink.
// The backend run is an in-process runner with the runSeatTasks signature (the real playbook is in
// the end-to-end test, apply_e2e_test.ts): it lets this test make one seat fail on purpose.
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { order, stateFixture } from "../testing/state_fixture.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";
import { startSmtpSink } from "../testing/smtp_sink.ts";
import { openStore } from "../state/store.ts";
import { apply, type RunSeatTasks } from "./apply.ts";
import type { SeatTask } from "../backend/seats.ts";
import { expire } from "./expire.ts";
import { newIdentity } from "../state/seal.ts";

Deno.test("apply: one run per backend, failing seat isolated and retried, credentials delivered, nothing pending -> no commit", async () => {
  const fe = await startFrontendServer();
  const mailDir = await Deno.makeTempDir({ prefix: "wod-sink-" });
  const sink = await startSmtpSink(mailDir);
  const { identity, recipient } = await newIdentity();
  const fx = await stateFixture({
    extra: {
      frontend: { api_url: fe.url, username_env: "WOD_TEST_FE_USER", password_env: "WOD_TEST_FE_PASS" },
      mail: { from: "wod@localhost", smtp_host: "127.0.0.1", smtp_port: sink.port, send_credentials: true },
      seal: { recipients: [recipient] },
    },
  });
  const vars: Record<string, string> = { WOD_TEST_FE_USER: fe.username, WOD_TEST_FE_PASS: fe.password };
  const common = { root: fx.root, env: "local", identities: [identity], getenv: (k: string) => vars[k] };
  const passwords: string[] = [];
  const runs: SeatTask[][] = [];
  let failSeat: number | undefined = 42;
  const runner: RunSeatTasks = (o) => {
    runs.push(o.tasks);
    return Promise.resolve(o.tasks.map((t) => {
      if (t.seat === failSeat) return { ...t, ok: false, error: "hub did not start" };
      const password = crypto.randomUUID();
      passwords.push(password);
      return { ...t, ok: true, password, completion: t.action === "CLEANUP" ? 50 : undefined };
    }));
  };
  const logs: string[] = [];
  const log = (l: string) => logs.push(l);
  const store = await openStore(fx.root, "local");
  try {
    await store.recordOrders([
      order("a40", "CREATE", 40, { customer: "101", email: "p40@example.org" }),
      order("a41", "CREATE", 41, { customer: "102", email: "p41@example.org" }),
      order("a42", "CREATE", 42, { customer: "103" }),
    ]);
    const r1 = await apply({ ...common, runSeatTasks: runner, log });
    assertEquals(runs.length, 1, "one backend run for all pending seats");
    assertEquals(runs[0].map((t) => `${t.action} ${t.seat}`), ["CREATE 40", "CREATE 41", "CREATE 42"]);
    assertEquals(r1.committed, true);
    const seats = await store.readSeats();
    assertEquals(seats.map((s) => s.status), ["active", "active", "failed"]);
    assertMatch(seats[2].reason!, /CREATE failed: hub did not start/);
    // Front end got the passwords and active (INTEROP callbacks), the participants got their email.
    assertEquals(fe.students.get("40")?.password, passwords[0]);
    assertEquals(fe.customers.get("101"), { active: "true" });
    const m = await sink.waitFor((x) => x.to.includes("p41@example.org"));
    assert(m.text.includes(passwords[1]) && m.text.includes("student41"), "credentials email content");
    // Retry: only the failed seat runs again.
    failSeat = undefined;
    await apply({ ...common, runSeatTasks: runner, log });
    assertEquals(runs[1].map((t) => `${t.action} ${t.seat}`), ["CREATE 42"]);
    assertEquals((await store.readSeats()).map((s) => s.status), ["active", "active", "active"]);
    // Nothing pending: no run, no commit.
    const before = (await exec("git", ["rev-list", "--count", "state"], { cwd: fx.remote })).stdout;
    const r3 = await apply({ ...common, runSeatTasks: runner, log });
    assertEquals([r3.committed, runs.length], [false, 2]);
    assertEquals((await exec("git", ["rev-list", "--count", "state"], { cwd: fx.remote })).stdout, before);

    // Expire: reminder once, then expiry -> CLEANUP + PURGE -> apply -> free; front end told.
    const expires = Date.parse((await store.readSeats())[0].expires!);
    const e1 = await expire({ ...common, now: new Date(expires - 30 * 60_000), log });
    assertEquals(e1.reminded.length, 3);
    await sink.waitFor((x) => /minutes left/.test(x.subject) && x.to.includes("p40@example.org"));
    const e2 = await expire({ ...common, now: new Date(expires - 20 * 60_000), log });
    assertEquals(e2.reminded, [], "the reminder is sent once");
    const e3 = await expire({ ...common, now: new Date(expires + 24 * 3_600_000), log });
    assertEquals(e3.recorded.length, 6);
    const r4 = await apply({ ...common, runSeatTasks: runner, log });
    // A seat never has two actions in one backend run: CLEANUP for all, then PURGE for all.
    assertEquals(r4.runs, 2);
    assertEquals(runs[2].map((t) => `${t.action} ${t.seat}`), ["CLEANUP 40", "CLEANUP 41", "CLEANUP 42"]);
    assertEquals(runs[3].map((t) => `${t.action} ${t.seat}`), ["PURGE 40", "PURGE 41", "PURGE 42"]);
    assertEquals((await store.readSeats()).map((s) => s.status), ["free", "free", "free"]);
    assertEquals(fe.customers.get("101"), { active: "false", cleaned: "true", completionPercentage: 50 });
    // PURGE is reported too: the student is free and holds the purge's password (the last one set).
    assertEquals(fe.students.get("40"), { password: passwords[passwords.length - 3], assigned: "false" });
    assertEquals(fe.calls.filter((c) => c.method === "PUT" && c.path === "/student/40").length, 3);

    // No password in git history or logs.
    const clone = await Deno.makeTempDir();
    await exec("git", ["clone", "-q", "--mirror", fx.remote, clone]);
    const history = (await exec("git", ["log", "--all", "-p", "--format=%B"], { cwd: clone })).stdout;
    await Deno.remove(clone, { recursive: true });
    assert(passwords.length >= 4);
    for (const p of passwords) {
      assert(!history.includes(p), "a password is in the git history");
      assert(!logs.join("\n").includes(p), "a password is in the logs");
    }
    assert(!history.includes("p40@example.org"), "an email is in the git history in plain text");
  } finally {
    await store.close();
    await sink.close();
    await fe.close();
    await Deno.remove(mailDir, { recursive: true });
    await fx.cleanup();
  }
});

Deno.test("expire: a seat stuck in provisioning past the timeout is cleaned up as failed; running twice records once", async () => {
  const fx = await stateFixture({ workshopPatch: "" });
  const store = await openStore(fx.root, "local");
  try {
    await store.recordOrders([order("s50", "CREATE", 50, { customer: "c" })]);
    const since = Date.parse((await store.readSeats())[0].pending![0].since);
    const early = await expire({
      root: fx.root,
      env: "local",
      now: new Date(since + 5 * 60_000),
      log: () => {},
    });
    assertEquals(early.orders, []);
    const late = await expire({
      root: fx.root,
      env: "local",
      now: new Date(since + 11 * 60_000),
      log: () => {},
    });
    assertEquals(late.orders.map((o) => o.action), ["CLEANUP", "PURGE"]);
    assertMatch(late.orders[0].reason!, /failed: still provisioning 11 min/);
    const s = (await store.readSeats())[0];
    assertEquals([s.status, s.pending?.map((p) => p.action)], ["cleaning", ["CLEANUP", "PURGE"]]);
    const again = await expire({
      root: fx.root,
      env: "local",
      now: new Date(since + 12 * 60_000),
      log: () => {},
    });
    assertEquals(again.recorded, []);
  } finally {
    await store.close();
    await fx.cleanup();
  }
});

Deno.test("apply: a seat failing timing.max_attempts times in a row is parked and left alone until a new order; tasks carry order ids", async () => {
  const fx = await stateFixture({ extra: { timing: { max_attempts: 2 } } });
  const store = await openStore(fx.root, "local");
  const runs: SeatTask[][] = [];
  const runner: RunSeatTasks = (o) => {
    runs.push(o.tasks);
    return Promise.resolve(
      o.tasks.map((t) =>
        t.action === "CLEANUP"
          ? { ...t, ok: false, error: "timed out: the seat action took more than 300 s" }
          : { ...t, ok: true, password: crypto.randomUUID() }
      ),
    );
  };
  const logs: string[] = [];
  const common = { root: fx.root, env: "local", runSeatTasks: runner, log: (l: string) => logs.push(l) };
  try {
    await store.recordOrders([order("c44", "CREATE", 44, { customer: "7" })]);
    await apply(common);
    assertEquals(runs[0], [{ action: "CREATE", workshop: "WKSHP-Shell101", seat: 44, order: "c44" }]);
    await store.recordOrders([order("x44", "CLEANUP", 44, { customer: "7" })]);
    await apply(common);
    let s = (await store.readSeats())[0];
    assertEquals([s.status, s.attempts, s.parked], ["failed", 1, undefined]);
    await apply(common);
    s = (await store.readSeats())[0];
    assertEquals([s.status, s.attempts, typeof s.parked], ["failed", 2, "string"]);
    assertMatch(s.reason!, /CLEANUP failed: timed out/);
    // Parked: the next applies run nothing for it (and commit nothing) but say why.
    const before = runs.length;
    const r = await apply(common);
    assertEquals([runs.length, r.committed, r.plan], [before, false, []]);
    assert(
      logs.some((l) => /jup1\/44: parked since .* after 2 failed attempt\(s\), not retried/.test(l)),
      logs.join("\n"),
    );
    // The operator's order clears it and runs.
    await store.recordOrders([order("p44", "PURGE", 44, { customer: "7" })]);
    s = (await store.readSeats())[0];
    assertEquals([s.parked, s.attempts], [undefined, undefined]);
    await apply(common);
    assertEquals(runs.at(-1)!.map((t) => `${t.action} ${t.order}`), ["PURGE p44"]);
    assertEquals((await store.readSeats())[0].status, "free");
  } finally {
    await store.close();
    await fx.cleanup();
  }
});

Deno.test("apply: a host-level failure leaves the seats as recorded, while seat results that came back are committed", async () => {
  const fx = await stateFixture();
  const store = await openStore(fx.root, "local");
  let mode: "throw" | "host" | "ok" = "throw";
  const runner: RunSeatTasks = (o) => {
    if (mode === "throw") return Promise.reject(new Error("ansible-playbook seats.yml produced no result"));
    return Promise.resolve(
      o.tasks.map((t) =>
        mode === "host"
          ? { ...t, ok: false, hostFailure: true, error: "Seat playbook failed: unreachable" }
          : { ...t, ok: true, password: crypto.randomUUID() }
      ),
    );
  };
  const common = { root: fx.root, env: "local", runSeatTasks: runner, log: () => {} };
  try {
    await store.recordOrders([order("h45", "CREATE", 45, { customer: "8" })]);
    for (const m of ["throw", "host"] as const) {
      mode = m;
      const r = await apply(common);
      assertEquals(r.outcomes.map((o) => o.ok), [false]);
      const s = (await store.readSeats())[0];
      assertEquals([s.status, s.attempts, s.pending?.length], ["provisioning", undefined, 1], m);
    }
    mode = "ok";
    await apply(common);
    assertEquals((await store.readSeats())[0].status, "active");
  } finally {
    await store.close();
    await fx.cleanup();
  }
});

Deno.test("apply: two concurrent applies of one environment (two clones of the state remote): the second is refused by the lease and runs nothing", async () => {
  const fx = await stateFixture();
  const a = await openStore(fx.root, "local");
  const b = await openStore(fx.root, "local");
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let entered!: () => void;
  const inRun = new Promise<void>((r) => entered = r);
  const ran: string[] = [];
  const runner = (who: string): RunSeatTasks => async (o) => {
    ran.push(...o.tasks.map((t) => `${who}: ${t.action} ${t.seat}`));
    entered();
    await gate;
    return o.tasks.map((t) => ({ ...t, ok: true, password: crypto.randomUUID() }));
  };
  try {
    await a.recordOrders([order("l46", "CREATE", 46, { customer: "9" })]);
    const first = apply({ root: fx.root, env: "local", store: a, runSeatTasks: runner("a"), log: () => {} });
    await inRun;
    let refused = "";
    await apply({ root: fx.root, env: "local", store: b, runSeatTasks: runner("b"), log: () => {} })
      .catch((e) => refused = (e as Error).message);
    assertMatch(refused, /Environment "local" is leased by .* \(apply local\) since/);
    release();
    await first;
    assertEquals(ran, ["a: CREATE 46"]);
    // Lease given back: the next apply runs (nothing pending now).
    const again = await apply({
      root: fx.root,
      env: "local",
      store: b,
      runSeatTasks: runner("b"),
      log: () => {},
    });
    assertEquals(again.committed, false);
    assertEquals((await b.readSeats())[0].status, "active");
  } finally {
    await a.close();
    await b.close();
    await fx.cleanup();
  }
});

Deno.test("apply: a reset workshop's student stays assigned at the front end after CLEANUP, and is freed by RESET", async () => {
  const fe = await startFrontendServer();
  const fx = await stateFixture({
    extra: {
      frontend: { api_url: fe.url, username_env: "WOD_TEST_FE_USER", password_env: "WOD_TEST_FE_PASS" },
    },
  });
  const file = `${fx.root}/workshops/WKSHP-Shell101/workshop.yaml`;
  await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace("reset: false", "reset: true"));
  const vars: Record<string, string> = { WOD_TEST_FE_USER: fe.username, WOD_TEST_FE_PASS: fe.password };
  const runner: RunSeatTasks = (o) =>
    Promise.resolve(o.tasks.map((t) => ({ ...t, ok: true, password: crypto.randomUUID(), completion: 0 })));
  const common = {
    root: fx.root,
    env: "local",
    getenv: (k: string) => vars[k],
    runSeatTasks: runner,
    log: () => {},
  };
  const store = await openStore(fx.root, "local");
  try {
    await store.recordOrders([order("c45", "CREATE", 45, { customer: "145" })]);
    await apply(common);
    await store.recordOrders([order("k45", "CLEANUP", 45, { customer: "145" })]);
    await apply(common);
    assertEquals((await store.readSeats()).find((s) => s.seat === 45)?.status, "held-for-reset");
    assertEquals(fe.students.get("45")?.assigned, "true", "reported free while it waits for its RESET");
    await store.recordOrders([order("r45", "RESET", 45, { customer: "145" })]);
    await apply(common);
    assertEquals((await store.readSeats()).find((s) => s.seat === 45)?.status, "free");
    assertEquals(fe.students.get("45")?.assigned, "false");
  } finally {
    await store.close();
    await fe.close();
    await fx.cleanup();
  }
});
