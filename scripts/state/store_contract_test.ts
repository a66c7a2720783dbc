// One contract, two stores: the git store on a local bare remote, and the GitHub store against the
// local server that checks every request against GitHub's OpenAPI description (@octokit/openapi).
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { openStore, type StateStore } from "./store.ts";
import { newIdentity, unseal } from "./seal.ts";
import { startGithubServer } from "../testing/github_server.ts";
import { order } from "../testing/state_fixture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

interface Harness {
  name: string;
  open(recipients?: string[]): Promise<StateStore>;
  /** Concurrent change outside this store instance (another writer). */
  commits(): Promise<number>;
  done(): Promise<void>;
}

async function gitHarness(): Promise<Harness> {
  const remote = await Deno.makeTempDir({ prefix: "wod-contract-git-" });
  await exec("git", ["init", "-q", "--bare", remote]);
  return {
    name: "git store on a local bare remote",
    open: (recipients) => openStore(ROOT, "local", { kind: "git", remote, branch: "state", recipients }),
    commits: async () => {
      const r = await exec("git", ["rev-list", "--count", "state"], { cwd: remote, allowFailure: true });
      return r.code === 0 ? Number(r.stdout.trim()) : 0;
    },
    done: () => Deno.remove(remote, { recursive: true }),
  };
}

async function githubHarness(): Promise<Harness> {
  const server = await startGithubServer({ token: "test-token" });
  server.createRepo("wod/state-test");
  return {
    name: "GitHub store against the local OpenAPI-checking server (@octokit/openapi api.github.com)",
    open: (recipients) =>
      openStore(ROOT, "local", {
        kind: "github",
        branch: "state",
        recipients,
        github: {
          baseUrl: server.url,
          token: "test-token",
          repo: "wod/state-test",
          writeIntervalMs: 0,
          log: () => {},
        },
      }),
    commits: () => Promise.resolve(server.commitCount("wod/state-test", "state")),
    done: async () => {
      await server.close();
      assertEquals(server.violations, [], "requests that do not match GitHub's OpenAPI description");
    },
  };
}

for (const make of [gitHarness, githubHarness]) {
  const label = make === gitHarness ? "git store" : "GitHub store (OpenAPI-checked local server)";

  Deno.test(`${label}: orders are recorded, idempotent by id, batched into one commit`, async () => {
    const h = await make();
    const s = await h.open();
    try {
      const r1 = await s.recordOrders([
        order("a1", "CREATE", 40, { customer: "c1" }),
        order("a2", "CREATE", 41),
      ]);
      assertEquals(r1.recorded, ["a1", "a2"]);
      assertEquals(await h.commits(), 1, `${h.name}: two orders, one commit`);
      const r2 = await s.recordOrders([order("a1", "CREATE", 40, { customer: "c1" })]);
      assertEquals(r2, { recorded: [], duplicates: ["a1"], rejected: [], warnings: [] });
      assertEquals(await h.commits(), 1, "a duplicate order changes nothing");
      const seats = await s.readSeats();
      assertEquals(seats.map((x) => [x.seat, x.status, x.orders]), [[40, "provisioning", ["a1"]], [
        41,
        "provisioning",
        [
          "a2",
        ],
      ]]);
      assertEquals((await s.readOrder("a1"))?.outcome, "accepted");
    } finally {
      await s.close();
      await h.done();
    }
  });

  Deno.test(`${label}: illegal transitions are rejected with a clear reason and recorded in the ledger`, async () => {
    const h = await make();
    const s = await h.open();
    try {
      await s.recordOrders([order("b1", "CREATE", 42, { customer: "alice" })]);
      const r = await s.recordOrders([order("b2", "CREATE", 42, { customer: "bob" })]);
      assertEquals(r.recorded, ["b2"]);
      assertEquals(r.rejected.length, 1);
      assertMatch(
        r.rejected[0].reason,
        /CREATE on seat jup1\/42 for customer bob refused: the seat is held by customer alice/,
      );
      assertEquals((await s.readOrder("b2"))?.outcome, "rejected");
      const seat = (await s.readSeats()).find((x) => x.seat === 42)!;
      assertEquals([seat.customer, seat.orders], ["alice", ["b1"]]);
      // A CLEANUP of a free seat is done already (issue 17 item 6): accepted, with the reason in the ledger.
      const r3 = await s.recordOrders([order("b3", "CLEANUP", 43)]);
      assertEquals(r3.rejected, []);
      const b3 = await s.readOrder("b3");
      assertEquals(b3?.outcome, "accepted");
      assertMatch(b3?.reason ?? "", /already done \(the seat is free\); the final callback is sent again/);
      // A front end's refused order leaves a notice on the seat (apply tells the front end).
      await s.recordOrders([order("b4", "CREATE", 42, { customer: "carol", source: "mail" })]);
      const held = (await s.readSeats()).find((x) => x.seat === 42)!;
      assertEquals([held.customer, held.notices?.map((n) => [n.order, n.outcome, n.customer])], [
        "alice",
        [["b4", "refused", "carol"]],
      ]);
    } finally {
      await s.close();
      await h.done();
    }
  });

  Deno.test(`${label}: updateSeats commits once, nothing to change makes no commit`, async () => {
    const h = await make();
    const s = await h.open();
    try {
      await s.recordOrders([order("c1", "CREATE", 44)]);
      const before = await h.commits();
      assertEquals(await s.updateSeats("noop", () => undefined), false);
      assertEquals(await s.updateSeats("same content", (seats) => [seats.get("jup1/44")!]), false);
      assertEquals(await h.commits(), before);
      assert(
        await s.updateSeats("activate", (seats) => {
          const x = seats.get("jup1/44")!;
          return [{ ...x, status: "active", pending: undefined } as typeof x].map((y) => {
            delete y.pending;
            return y;
          });
        }),
      );
      assertEquals(await h.commits(), before + 1);
      assertEquals((await s.readSeats())[0].status, "active");
    } finally {
      await s.close();
      await h.done();
    }
  });

  Deno.test(`${label}: two writers racing lose no order (conflict -> re-read -> retry)`, async () => {
    const h = await make();
    const a = await h.open();
    const b = await h.open();
    try {
      const jobs: Promise<unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        jobs.push(a.recordOrders([order(`ra${i}`, "CREATE", 45 + i)]));
        jobs.push(b.recordOrders([order(`rb${i}`, "CREATE", 49 + i)]));
      }
      await Promise.all(jobs);
      const seats = await a.readSeats();
      assertEquals(seats.length, 8);
      assertEquals(seats.every((x) => x.status === "provisioning"), true);
      assertEquals(await h.commits(), 8);
    } finally {
      await a.close();
      await b.close();
      await h.done();
    }
  });

  Deno.test(`${label}: the participant's email is sealed with age, never stored in plain text`, async () => {
    const h = await make();
    const { identity, recipient } = await newIdentity();
    const s = await h.open([recipient]);
    try {
      await s.recordOrders([order("d1", "CREATE", 50, { customer: "c9", email: "pat@example.org" })]);
      const seat = (await s.readSeats())[0];
      assert(seat.email_sealed?.startsWith("-----BEGIN AGE ENCRYPTED FILE-----"));
      assertEquals(await unseal(seat.email_sealed!, [identity]), "pat@example.org");
      const rec = await s.readOrder("d1");
      assert(!JSON.stringify(rec).includes("pat@example.org"), "order ledger holds the email in plain text");
      assert(!JSON.stringify(seat).includes("pat@example.org"));
    } finally {
      await s.close();
      await h.done();
    }
  });
}

Deno.test("GitHub store honours retry-after on a secondary rate limit and retries a 409 ref update (OpenAPI-checked server)", async () => {
  const server = await startGithubServer({ token: "t" });
  server.createRepo("wod/rl");
  const { openGithubTree } = await import("../git/github_store.ts");
  const { LedgerStore } = await import("./store.ts");
  const logs: string[] = [];
  const tree = await openGithubTree({
    baseUrl: server.url,
    token: "t",
    repo: "wod/rl",
    branch: "state",
    writeIntervalMs: 0,
    retryAfterBaseMs: 100,
    log: (l) => logs.push(l),
  });
  const s = new LedgerStore(tree, "local", []);
  try {
    await s.recordOrders([order("e0", "CREATE", 51)]);
    server.inject({
      status: 403,
      match: /^POST .*git\/trees$/,
      headers: { "retry-after": "1" },
      message: "You have exceeded a secondary rate limit",
    });
    server.inject({ status: 409, match: /^PATCH .*git\/refs/ });
    const t0 = Date.now();
    const r = await s.recordOrders([order("e1", "CREATE", 52)]);
    assertEquals(r.recorded, ["e1"]);
    assert(Date.now() - t0 >= 90, "retry-after was not honoured");
    assert(logs.some((l) => /secondary rate limit/.test(l)), logs.join("\n"));
    assertEquals((await s.readSeats()).map((x) => x.seat), [51, 52]);
    assertEquals(server.violations, []);
  } finally {
    await server.close();
  }
});

Deno.test("GitHub test server rejects requests that do not match the OpenAPI description and records them", async () => {
  const server = await startGithubServer();
  server.createRepo("o/r");
  try {
    const h = { authorization: "token x", "content-type": "application/json" };
    const bad1 = await fetch(`${server.url}/repos/o/r/no-such-thing`, { headers: h });
    await bad1.body?.cancel();
    assertEquals(bad1.status, 404);
    const bad2 = await fetch(`${server.url}/repos/o/r/git/refs`, { method: "PUT", headers: h, body: "{}" });
    await bad2.body?.cancel();
    assertEquals(bad2.status, 405);
    const bad3 = await fetch(`${server.url}/repos/o/r/actions/workflows/order.yml/dispatches`, {
      method: "POST",
      headers: h,
      body: JSON.stringify({ inputs: {} }),
    });
    await bad3.body?.cancel();
    assertEquals(bad3.status, 422);
    const ok = await fetch(`${server.url}/repos/o/r/actions/workflows/order.yml/dispatches`, {
      method: "POST",
      headers: h,
      body: JSON.stringify({ ref: "main", inputs: { seat: "40" } }),
    });
    await ok.body?.cancel();
    assertEquals(ok.status, 204);
    assertEquals(server.violations.map((v) => v.status), [404, 405, 422]);
    assertMatch(server.violations[2].message, /required property 'ref'/);
    assertEquals(server.dispatches, [{
      repo: "o/r",
      workflow: "order.yml",
      ref: "main",
      inputs: { seat: "40" },
    }]);
  } finally {
    await server.close();
  }
});
