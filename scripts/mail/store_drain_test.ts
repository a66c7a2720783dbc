// The drain worker against the real state store (git store on a local bare remote): several orders in
// one commit, each recorded once, the spool emptied only after the store confirmed.
import { assertEquals } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { openStore, type StateStore } from "../state/store.ts";
import { fireAndClose, originalBytes, startTestListener, waitFor } from "./testing.ts";

Deno.test("the listener drains original-format orders into the git state store, once each", async () => {
  let store: StateStore | undefined;
  const t = await startTestListener({
    sink: async (root, cfg) => {
      await exec("git", ["init", "-q", "--bare", `${root}/state.git`]);
      store = await openStore(root, "t", { config: cfg, remote: `${root}/state.git` });
      return store;
    },
  });
  try {
    const subjects = [
      "CREATE 11 c11 p11@example.com",
      "CREATE 12 c12 p12@example.com",
      "CREATE 13 c13 p13@example.com",
    ];
    await Promise.all(
      subjects.map((s) => fireAndClose(t.port, originalBytes({ subject: s, body: "WKSHP-Test" }))),
    );
    await waitFor(() => t.listener.stats.accepted === 3 && t.listener.spool.depth === 0, 60_000, "drained");
    const orders = await store!.readOrders();
    assertEquals(orders.map((o) => o.seats[0]).sort(), [11, 12, 13]);
    const seats = await store!.readSeats();
    assertEquals(
      seats.filter((s) => s.backend === "b1" && [11, 12, 13].includes(s.seat)).map((s) => s.workshop),
      ["WKSHP-Test", "WKSHP-Test", "WKSHP-Test"],
    );
    const log = await exec("git", ["--git-dir", `${t.root}/state.git`, "log", "--format=%s", "state"]);
    const commits = log.stdout.trim().split("\n").filter((l) => /order/.test(l));
    assertEquals(commits.length <= 3, true, `orders batched into few commits: ${commits.join(" | ")}`);
  } finally {
    await t.listener.close();
    await store?.close();
    await t.close();
  }
});
