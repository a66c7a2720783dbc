import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { orderArgs, stateFixture, wod } from "../testing/state_fixture.ts";
import { startGithubServer } from "../testing/github_server.ts";
import { readRecordedSeats } from "../state/read.ts";

async function commits(remote: string): Promise<number> {
  const r = await exec("git", ["rev-list", "--count", "state"], { cwd: remote, allowFailure: true });
  return r.code === 0 ? Number(r.stdout.trim()) : 0;
}

Deno.test("wod order: ten concurrent writers against one remote lose no order and record none twice", async () => {
  const fx = await stateFixture();
  try {
    const run = (i: number) =>
      wod(fx.root, orderArgs(fx, "create", 40 + i, "--customer", `cust${i}`, "--id", `conc-${i}`));
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => run(i)));
    for (const r of first) assertEquals(r.code, 0, r.stderr);
    assertEquals(await commits(fx.remote), 10);
    // The same ten orders again, concurrently: all duplicates, no new commit.
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => run(i)));
    for (const r of again) {
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "already recorded");
    }
    assertEquals(await commits(fx.remote), 10);
    const clone = await Deno.makeTempDir();
    try {
      await exec("git", ["clone", "-q", "-b", "state", fx.remote, clone]);
      const seats = await readRecordedSeats(clone, fx.env);
      assertEquals(seats.map((s) => s.seat), [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
      for (const s of seats) {
        assertEquals(s.orders, [`conc-${s.seat - 40}`]);
        assertEquals(s.pending?.map((p) => p.action), ["CREATE"]);
        assertEquals(s.customer, `cust${s.seat - 40}`);
      }
    } finally {
      await Deno.remove(clone, { recursive: true });
    }
    // apply --dry-run plans each seat exactly once.
    const plan = await wod(fx.root, ["apply", "--env", fx.env, "--dry-run"]);
    assertEquals(plan.code, 0, plan.stderr);
    for (let i = 0; i < 10; i++) {
      assertEquals(plan.stdout.split(`CREATE ${40 + i}`).length - 1, 1, plan.stdout);
    }
  } finally {
    await fx.cleanup();
  }
});

Deno.test("wod order refuses a CREATE on a seat held by another customer, with the reason", async () => {
  const fx = await stateFixture();
  try {
    const a = await wod(fx.root, orderArgs(fx, "create", 55, "--customer", "alice"));
    assertEquals(a.code, 0, a.stderr);
    const b = await wod(fx.root, orderArgs(fx, "create", 55, "--customer", "bob"));
    assertEquals(b.code, 1);
    assertMatch(
      b.stderr,
      /CREATE on seat jup1\/55 for customer bob refused: the seat is held by customer alice/,
    );
    const c = await wod(fx.root, orderArgs(fx, "create", 61));
    assertEquals(c.code, 1);
    assertMatch(c.stderr, /seat 61|Seat 61/);
    const st = await wod(fx.root, ["state", "--env", fx.env, "--json"]);
    assertEquals(st.code, 0, st.stderr);
    const seats = JSON.parse(st.stdout).seats;
    assertEquals(seats.length, 1);
    assertEquals([seats[0].seat, seats[0].status, seats[0].customer], [55, "provisioning", "alice"]);
    assert(Array.isArray(seats[0].orders) && seats[0].orders.length === 1);
  } finally {
    await fx.cleanup();
  }
});

Deno.test("wod order --dispatch calls workflow_dispatch (local server checked against GitHub's OpenAPI description)", async () => {
  const fx = await stateFixture();
  const gh = await startGithubServer({ token: "tok" });
  gh.createRepo("wod/ops", { workflows: ["order.yml"] });
  try {
    const r = await wod(
      fx.root,
      orderArgs(fx, "reset", "40-45", "--dispatch", "--id", "d-1"),
      { GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: "wod/ops", GITHUB_TOKEN: "tok", GITHUB_REF_NAME: "main" },
    );
    assertEquals(r.code, 0, r.stderr);
    // The whole order goes as JSON (`order`), with the fields that name the run beside it.
    const order = JSON.parse(String(gh.dispatches[0]?.inputs.order));
    assertEquals(order, {
      id: "d-1",
      action: "RESET",
      env: fx.env,
      backend: "jup1",
      workshop: "WKSHP-Shell101",
      seats: [40, 45],
      source: "dispatch",
      received: order.received,
    });
    assertEquals(Number.isNaN(Date.parse(order.received)), false);
    assertEquals(gh.dispatches, [{
      repo: "wod/ops",
      workflow: "order.yml",
      ref: "main",
      inputs: {
        id: "d-1",
        action: "RESET",
        env: fx.env,
        backend: "jup1",
        workshop: "WKSHP-Shell101",
        seat: "40-45",
        order: gh.dispatches[0].inputs.order,
      },
    }]);
    assertEquals(gh.violations, []);
    assertEquals(await commits(fx.remote), 0, "a dispatched order is not committed by `wod order`");
  } finally {
    await gh.close();
    await fx.cleanup();
  }
});
