// The OpenAPI-checking GitHub stand-in: the issue comment and dispatch routes other areas use work
// through Octokit with no contract violation.
import { assertEquals, assertRejects } from "../common/assert.ts";
import { githubClient } from "../git/github_store.ts";
import { startGithubServer } from "./github_server.ts";

Deno.test("GitHub test server: issue comments list/create/update and workflow dispatch through Octokit, checked against the OpenAPI description", async () => {
  const server = await startGithubServer({ token: "tok" });
  server.createRepo("wod/repo", { workflows: ["order.yml"] });
  const gh = githubClient({ baseUrl: server.url, token: "tok", writeIntervalMs: 0, log: () => {} });
  try {
    const owner = "wod", repo = "repo";
    const c = await gh.rest.issues.createComment({ owner, repo, issue_number: 7, body: "plan: 2 seats" });
    await gh.rest.issues.createComment({ owner, repo, issue_number: 8, body: "other PR" });
    await gh.rest.issues.updateComment({ owner, repo, comment_id: c.data.id, body: "plan: 3 seats" });
    const list = await gh.rest.issues.listComments({ owner, repo, issue_number: 7, per_page: 100 });
    assertEquals(list.data.map((x) => x.body), ["plan: 3 seats"]);
    await gh.rest.actions.createWorkflowDispatch({
      owner,
      repo,
      workflow_id: "order.yml",
      ref: "main",
      inputs: { a: "1" },
    });
    assertEquals(server.dispatches.length, 1);
    await assertRejects(
      () => gh.rest.actions.createWorkflowDispatch({ owner, repo, workflow_id: "nope.yml", ref: "main" }),
      /Not Found/,
    );
    assertEquals(server.violations, []);
    const bad = await githubClient({ baseUrl: server.url, token: "wrong", writeIntervalMs: 0, log: () => {} })
      .request(
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        { owner, repo, issue_number: 7 },
      ).catch((e) => e.status);
    assertEquals(bad, 401);
  } finally {
    await server.close();
  }
});
