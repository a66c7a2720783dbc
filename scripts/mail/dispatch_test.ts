// Draining into workflow_dispatch calls, tested against scripts/testing/github_server.ts (a local
// server that checks every request against GitHub's OpenAPI description of api.github.com).
import { assert, assertEquals } from "../common/assert.ts";
import { GithubServer } from "../testing/github_server.ts";
import { DispatchSink } from "./dispatch.ts";
import { fireAndClose, originalBytes, startTestListener, waitFor } from "./testing.ts";

Deno.test("orders drain into workflow_dispatch calls (OpenAPI-checked): per-seat order, retried, once each", async () => {
  const gh = await new GithubServer({ token: "test-token-not-a-secret" }).start();
  gh.createRepo("acme/wod-state", { workflows: ["order.yml"] });
  let journalDir = "";
  const t = await startTestListener({
    sink: async (root) => {
      journalDir = `${root}/dispatch`;
      await Deno.mkdir(journalDir);
      return new DispatchSink({
        baseUrl: gh.url,
        token: "test-token-not-a-secret",
        repo: "acme/wod-state",
        workflow: "order.yml",
        ref: "main",
        recipients: [],
        dir: journalDir,
      });
    },
  });
  try {
    // The first dispatch fails (422, not retried by Octokit): the spool keeps the orders until it works.
    gh.inject({ status: 422, match: /dispatches/, message: "Unexpected inputs" });
    const subjects = ["CREATE 3 c3 p3@example.com", "CLEANUP 3 c3", "CREATE 4 c4 p4@example.com"];
    for (const s of subjects) {
      await fireAndClose(t.port, originalBytes({ subject: s, body: "WKSHP-Test" }));
      await waitFor(() => t.listener.stats.accepted === subjects.indexOf(s) + 1, 10_000, `accepted ${s}`);
    }
    await waitFor(
      () => t.listener.drainer.stats.failing || gh.dispatches.length === 3,
      10_000,
      "first attempt",
    );
    await waitFor(() => gh.dispatches.length === 3 && t.listener.spool.depth === 0, 30_000, "3 dispatches");
    assertEquals(gh.violations, [], "every request matches GitHub's OpenAPI description");
    assert(
      /Cannot dispatch order/.test(t.listener.drainer.stats.lastError ?? ""),
      "the failed attempt was seen",
    );
    const seat3 = gh.dispatches.filter((d) => d.inputs.seat === "3").map((d) => d.inputs.action);
    assertEquals(seat3, ["CREATE", "CLEANUP"], "same seat: arrival order");
    for (const d of gh.dispatches) {
      assertEquals([d.repo.toLowerCase(), d.workflow, d.ref], ["acme/wod-state", "order.yml", "main"]);
      assert(Object.keys(d.inputs).length <= 25, "at most 25 inputs");
      assertEquals(JSON.stringify(d.inputs).includes("@example.com"), false, "no plain email in inputs");
      assertEquals([d.inputs.env, d.inputs.backend, d.inputs.workshop], ["t", "b1", "WKSHP-Test"]);
    }
    // The same order sent again (no Message-ID): a new delivery with its own id, dispatched once.
    await fireAndClose(t.port, originalBytes({ subject: subjects[0], body: "WKSHP-Test" }));
    await waitFor(() => t.listener.stats.accepted === 4 && t.listener.spool.depth === 0, 10_000, "drained");
    assertEquals(gh.dispatches.length, 4);
  } finally {
    await t.close();
    await gh.close();
  }
});
