// Issue 17 item 5: the listener checks what the seat's recorded state decides (who holds it, what it
// waits for) before answering 250, so the refusal is a 5xx with its reason in the log and in the
// ledger. Real git state store as the sink (as `wod listen` without --record-to).
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { openStore, type StateStore } from "../state/store.ts";
import { fireAndClose, originalBytes, sendMessage, startTestListener, waitFor } from "./testing.ts";

Deno.test("an order the seat's recorded state refuses gets 550 with the state machine's reason, in the log and the ledger, never a 250", async () => {
  let store: StateStore | undefined;
  const t = await startTestListener({
    sink: async (root, cfg) => {
      await exec("git", ["init", "-q", "--bare", `${root}/state.git`]);
      store = await openStore(root, "t", { config: cfg, remote: `${root}/state.git` });
      return store;
    },
  });
  const order = (subject: string) => sendMessage(t.port, { message: `Subject: ${subject}\nWKSHP-Test\n` });
  try {
    assertEquals((await order("CREATE 11 c1 p1@example.com")).code, 250);
    // At once, before the drain recorded the first: the orders accepted here count too.
    const early = await order("CREATE 11 c2 p2@example.com");
    assertEquals(early.code, 550, early.text);
    assertMatch(
      early.text,
      /^5\.6\.0 CREATE on seat b1\/11 for customer c2 refused: the seat is held by customer c1/,
    );
    await waitFor(
      () => t.listener.spool.depth === 0 && t.listener.drainer.stats.recorded === 1,
      30_000,
      "drained",
    );
    // From the recorded state.
    const late = await order("CREATE 11 c3 p3@example.com");
    assertMatch(late.text, /held by customer c1/);
    const cleanup = await order("CLEANUP 11 c9");
    assertEquals(cleanup.code, 550);
    assertMatch(
      cleanup.text,
      /CLEANUP on seat b1\/11 for customer c9 refused: the seat is held by customer c1/,
    );
    // The holder's own CLEANUP and a CREATE on another seat are taken.
    assertEquals((await order("CLEANUP 11 c1")).code, 250);
    assertEquals((await order("CREATE 12 c4 p4@example.com")).code, 250);
    await waitFor(
      () => t.listener.spool.depth === 0 && t.listener.drainer.stats.recorded === 3,
      30_000,
      "drained",
    );
    const refusedLines = t.logs.filter((l) => l.event === "refused" && l.stage === "data");
    assertEquals(refusedLines.length, 3);
    assertMatch(String(refusedLines[2].reason), /for customer c9 refused/);
    // The ledger has each refusal, with the reason (written in the background: wait for it).
    const rejected = await waitFor(
      async () => {
        const r = (await store!.readOrders()).filter((o) => o.outcome === "rejected");
        return r.length === 3 ? r : undefined;
      },
      30_000,
      "3 refusals in the ledger",
    );
    for (const r of rejected) {
      assertMatch(
        r.reason!,
        /^Refused before acceptance \(the sender got 550\): .* refused: the seat is held by customer c1/,
      );
    }
    assertEquals(rejected.map((r) => r.customer).sort(), ["c2", "c3", "c9"]);
    assertEquals((await store!.readOrders()).filter((o) => o.outcome === "accepted").length, 3);
    const seat = (await store!.readSeats()).find((s) => s.backend === "b1" && s.seat === 11)!;
    assertEquals(seat.customer, "c1");
    // The refusals from the recorded state left front-end notices on the seat (apply delivers them).
    assert((seat.notices ?? []).some((n) => n.customer === "c9" && n.outcome === "refused"), "notice for c9");
  } finally {
    await t.listener.close();
    await store?.close();
    await t.close();
  }
});

Deno.test("CLEANUP, RESET and PURGE sent back to back (as the api-db does) are checked in their order of arrival: none refused", async () => {
  let store: StateStore | undefined;
  const t = await startTestListener({
    sink: async (root, cfg) => {
      await exec("git", ["init", "-q", "--bare", `${root}/state.git`]);
      store = await openStore(root, "t", { config: cfg, remote: `${root}/state.git` });
      return store;
    },
  });
  try {
    assertEquals(
      (await sendMessage(t.port, { message: "Subject: CREATE 14 c1 p1@example.com\nWKSHP-Test\n" })).code,
      250,
    );
    await waitFor(() => t.listener.drainer.stats.recorded === 1, 30_000, "CREATE recorded");
    await new Promise((r) => setTimeout(r, 1_100)); // the gate's cached state is stale: the next check reads
    // Like the original sender: each conversation written at once, the socket closed at the greeting.
    for (const subject of ["CLEANUP 14 c1", "RESET 14 c1", "PURGE 14 c1"]) {
      await fireAndClose(t.port, originalBytes({ subject, body: "WKSHP-Test" }));
    }
    await waitFor(
      () => t.listener.drainer.stats.recorded === 4 && t.listener.spool.depth === 0,
      30_000,
      "recorded",
    );
    const refused = t.logs.filter((l) => l.event === "refused");
    assertEquals(refused.map((l) => l.reason), []);
    const orders = await store!.readOrders();
    assertEquals(orders.map((o) => o.outcome), ["accepted", "accepted", "accepted", "accepted"]);
  } finally {
    await t.listener.close();
    await store?.close();
    await t.close();
  }
});
