// Issue 17 items 5 and 6, the front end's side: orders that changed nothing on a seat still reach the
// front end through its callbacks, sent by apply (scripts/notify/notices.ts). Real git store, real
// front-end API test server; the backend run is an in-process runner (these orders need none).
import { assertEquals, assertMatch } from "../common/assert.ts";
import { order, stateFixture } from "../testing/state_fixture.ts";
import { startFrontendServer } from "../testing/frontend_server.ts";
import { openStore } from "../state/store.ts";
import { apply, type RunSeatTasks } from "../reconcile/apply.ts";
import type { SeatTask } from "../backend/seats.ts";

async function setup() {
  const fe = await startFrontendServer();
  const fx = await stateFixture({
    extra: {
      frontend: { api_url: fe.url, username_env: "WOD_TEST_FE_USER", password_env: "WOD_TEST_FE_PASS" },
    },
  });
  const vars: Record<string, string> = { WOD_TEST_FE_USER: fe.username, WOD_TEST_FE_PASS: fe.password };
  const runs: SeatTask[][] = [];
  const runner: RunSeatTasks = (o) => {
    runs.push(o.tasks);
    return Promise.resolve(
      o.tasks.map((t) => ({ ...t, ok: true, password: crypto.randomUUID(), completion: 10 })),
    );
  };
  const logs: string[] = [];
  const common = {
    root: fx.root,
    env: "local",
    getenv: (k: string) => vars[k],
    runSeatTasks: runner,
    log: (l: string) => logs.push(l),
  };
  const store = await openStore(fx.root, "local");
  return {
    fe,
    store,
    runs,
    logs,
    run: () => apply(common),
    close: async () => {
      await store.close();
      await fe.close();
      await fx.cleanup();
    },
  };
}

Deno.test("our expiry first, then the front end's CLEANUP: accepted, no backend run, and apply sends the final callback again", async () => {
  const t = await setup();
  try {
    await t.store.recordOrders([order("c50", "CREATE", 50, { customer: "150", source: "mail" })]);
    await t.run();
    await t.store.recordOrders([order("e50", "CLEANUP", 50, { customer: "150", source: "expire" })]);
    await t.run();
    assertEquals((await t.store.readSeats()).find((s) => s.seat === 50)?.status, "free");
    t.fe.customers.delete("150"); // forget what the first CLEANUP reported
    const runsBefore = t.runs.length;
    // The api-db's own expiry, about 10 s later.
    const r = await t.store.recordOrders([order("k50", "CLEANUP", 50, { customer: "150", source: "mail" })]);
    assertEquals(r.rejected, []);
    assertEquals((await t.store.readOrder("k50"))?.outcome, "accepted");
    await t.run();
    assertEquals(t.runs.length, runsBefore, "no backend run for a seat already cleaned up");
    assertEquals(t.fe.customers.get("150"), { active: "false", cleaned: "true" });
    assertEquals(t.fe.students.get("50")?.assigned, "false");
    assertEquals(
      (await t.store.readSeats()).find((s) => s.seat === 50)?.notices,
      undefined,
      "notice cleared",
    );
    assertMatch(t.logs.join("\n"), /jup1\/50: CLEANUP of order k50 \(done\) reported to the front end/);
  } finally {
    await t.close();
  }
});

Deno.test("orders refused by the seat's state reach the front end: CREATE on a held seat keeps the student assigned, another customer's CLEANUP ends that customer", async () => {
  const t = await setup();
  try {
    await t.store.recordOrders([order("c51", "CREATE", 51, { customer: "160", source: "mail" })]);
    await t.run();
    t.fe.students.delete("51");
    const r = await t.store.recordOrders([
      order("c51b", "CREATE", 51, { customer: "161", source: "mail" }),
      order("k51b", "CLEANUP", 51, { customer: "161", source: "mail" }),
    ]);
    assertEquals(r.rejected.map((x) => x.id), ["c51b", "k51b"]);
    await t.run();
    assertEquals(t.fe.students.get("51"), { assigned: "true" });
    assertEquals(t.fe.customers.get("161"), { active: "false", cleaned: "true" });
    const seat = (await t.store.readSeats()).find((s) => s.seat === 51)!;
    assertEquals([seat.status, seat.customer, seat.notices], ["active", "160", undefined]);
    assertEquals(t.fe.customers.get("160"), { active: "true" }, "the holder is left alone");
  } finally {
    await t.close();
  }
});
