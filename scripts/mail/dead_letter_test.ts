// Finding 9 of issue 11: an order the store refuses at drain time goes to the dead-letter file with its
// reason (and into the ledger), the other orders are drained at once, and /health shows it.
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import type { Order } from "../config/types.gen.ts";
import { openStore, OrderRefusedError, type StateStore } from "../state/store.ts";
import { DEAD_LETTER_FILE, type DeadLetter } from "./drain.ts";
import { DirSink } from "./sink.ts";
import { fireAndClose, originalBytes, startTestListener, waitFor } from "./testing.ts";

async function deadLetters(spoolDir: string): Promise<DeadLetter[]> {
  const text = await Deno.readTextFile(join(spoolDir, DEAD_LETTER_FILE)).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("an order the store refuses goes to the dead-letter file; the orders around it are recorded; /health shows it", async () => {
  const t = await startTestListener({
    health: true,
    sink: (root) => {
      const d = new DirSink(`${root}/sink`);
      return Promise.resolve({
        recordOrders: (orders: Order[]) => {
          const bad = orders.find((o) => o.customer === "poison");
          if (bad) return Promise.reject(new OrderRefusedError(bad.id, `Order ${bad.id} refused (test)`));
          return d.recordOrders(orders);
        },
        recordRefusal: (o: Order, reason: string) => d.recordRefusal(o, reason),
      });
    },
  });
  try {
    // All three in one spool segment batch: the poison one in the middle.
    await Promise.all(
      ["CREATE 3 c3 p3@example.com", "CREATE 4 poison p4@example.com", "CREATE 5 c5 p5@example.com"].map((
        s,
      ) => fireAndClose(t.port, originalBytes({ subject: s, body: "WKSHP-Test" }))),
    );
    await waitFor(() => t.listener.stats.accepted === 3 && t.listener.spool.depth === 0, 10_000, "drained");
    const recorded = (await DirSink.readAll(t.sinkDir)).map((x) => (x.order as Order).customer).sort();
    assertEquals(recorded, ["c3", "c5"], "the other orders are recorded");
    const dead = await deadLetters(t.spoolDir);
    assertEquals(dead.map((d) => d.order.customer), ["poison"]);
    assertMatch(dead[0].reason, /refused \(test\)/);
    const ledger = await Deno.readTextFile(join(t.sinkDir, "refused.jsonl"));
    assertMatch(ledger, new RegExp(`"id":"${dead[0].id}".*refused \\(test\\)`));
    const r = await fetch(`http://127.0.0.1:${t.listener.health!.port}/health`);
    const h = await r.json();
    assertEquals([r.status, h.status, h.dead_letters, h.drain_failing], [200, "ok", 1, false]);
    assertEquals(h.last_dead_letter.id, dead[0].id);
    assertMatch(h.warnings.join(" "), /1 order\(s\) refused by the store were moved to .*dead-letter\.jsonl/);
    // A later order drains as usual (nothing blocks).
    await fireAndClose(t.port, originalBytes({ subject: "CREATE 6 c6 p6@example.com", body: "WKSHP-Test" }));
    await waitFor(
      async () => (await DirSink.readAll(t.sinkDir)).length === 3 && t.listener.spool.depth === 0,
      10_000,
      "the next order",
    );
  } finally {
    await t.close();
  }
});

Deno.test("the git state store refuses an order at drain time: it is in the ledger with the reason, the rest is recorded", async () => {
  let store: StateStore | undefined;
  const good = (n: number): Order => ({
    id: `c-${String(n).repeat(40).slice(0, 40)}`,
    action: "CREATE",
    env: "t",
    backend: "b1",
    workshop: "WKSHP-Test",
    seats: [n, n],
    customer: `k${n}`,
    source: "mail",
    received: new Date().toISOString(),
  });
  // An order an older listener spooled for another environment: the store must refuse it.
  const bad: Order = { ...good(7), id: "c-bad0000000000000000000000000000000000000", env: "other" };
  const t = await startTestListener({
    health: true,
    sink: async (root, cfg) => {
      await exec("git", ["init", "-q", "--bare", `${root}/state.git`]);
      store = await openStore(root, "t", { config: cfg, remote: `${root}/state.git` });
      await Deno.mkdir(`${root}/spool`, { recursive: true });
      const seg = [good(2), bad, good(3)].map((o) => JSON.stringify(o)).join("\n") + "\n";
      await Deno.writeTextFile(`${root}/spool/seg-000000000000001-1-000000001.jsonl`, seg);
      return store;
    },
  });
  try {
    await waitFor(() => t.listener.spool.depth === 0, 60_000, "the spool drained");
    const orders = await store!.readOrders();
    const byId = new Map(orders.map((o) => [o.id, o]));
    assertEquals(byId.get(good(2).id)?.outcome, "accepted");
    assertEquals(byId.get(good(3).id)?.outcome, "accepted");
    const refused = byId.get(bad.id);
    assert(refused, "the refused order is in the ledger");
    assertEquals(refused.outcome, "rejected");
    assertMatch(refused.reason ?? "", /Refused by the store at drain time.*is for environment "other"/);
    const dead = await deadLetters(t.spoolDir);
    assertEquals(dead.map((d) => d.id), [bad.id]);
    assertEquals(t.listener.healthReport().dead_letters, 1);
  } finally {
    await t.listener.close();
    await store?.close();
    await t.close();
  }
});
