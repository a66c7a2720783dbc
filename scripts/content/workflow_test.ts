// The validate workflow's "plan" job, run by the local workflow runner on a pull request that breaks
// one notebook cell: the notebooks step runs `wod test-workshop` for the changed workshop on the real
// sandbox backend and the PR comment (posted to scripts/testing/github_server.ts, which checks every
// request against GitHub's OpenAPI description; GitHub itself cannot be reached here) shows the failing
// cell beside the seat plan. Seats 118-119 of the shared sandbox (scripts/content/testing.ts).
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../common/assert.ts";
import { REPO_ROOT } from "../config/testing.ts";
import { runWorkflow } from "../workflows/runner.ts";
import { cloneWorkingTree, commitAll } from "../workflows/workspace.ts";
import { CONTENT_RANGES, setLocalRanges } from "./testing.ts";

const isRoot = Deno.uid() === 0;

Deno.test({
  name: "validate on a pull request that breaks one cell shows that cell in the PR comment and fails",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { startGithubServer } = await import("../testing/github_server.ts");
    const gh = await startGithubServer();
    const dir = await Deno.makeTempDir({ prefix: "wod-content-wf-" });
    try {
      gh.createRepo("wod/wod");
      const ws = join(dir, "ws");
      await cloneWorkingTree(REPO_ROOT, ws);
      // Seats 118-119 for the changed workshop: runner_test.ts may run at the same time on 100-117.
      await setLocalRanges(ws, {
        "WKSHP-Shell101": [118, 119],
        "WKSHP-PyBasics101": CONTENT_RANGES["WKSHP-PyBasics101"],
        "WKSHP-REST101": CONTENT_RANGES["WKSHP-REST101"],
      });
      const base = await commitAll(ws, "content test seats");
      const nbFile = join(ws, "workshops/WKSHP-Shell101/1-Shell-Basics.ipynb");
      const nb = JSON.parse(await Deno.readTextFile(nbFile));
      const cell = nb.cells.findIndex((c: { id?: string }) => c.id === "code2");
      assert(cell >= 0, "cell code2 not found in 1-Shell-Basics.ipynb");
      nb.cells[cell].source = ["sh('printf \"a\\nb\\n\" > letters.txt')\n", "count_lines('letters.txt')"];
      await Deno.writeTextFile(nbFile, JSON.stringify(nb, null, 1) + "\n");
      const head = await commitAll(ws, "break one cell");
      const lines: string[] = [];
      const res = await runWorkflow({
        workflow: join(ws, ".github/workflows/validate.yml"),
        workspace: ws,
        repository: "wod/wod",
        apiUrl: gh.url,
        tempDir: join(dir, "run"),
        sha: head,
        jobs: ["plan"],
        event: {
          name: "pull_request",
          payload: {
            action: "synchronize",
            number: 31,
            pull_request: {
              number: 31,
              base: { sha: base, ref: "main", repo: { full_name: "wod/wod" } },
              head: { sha: head, ref: "feature", repo: { full_name: "wod/wod" } },
            },
          },
        },
        log: (l) => lines.push(l),
      });
      const plan = res.jobs.find((j) => j.id === "plan")!;
      const step = (id: string) => plan.steps.find((s) => s.id === id)!;
      assertEquals(step("notebooks").outcome, "success", step("notebooks").log + lines.join("\n"));
      assertEquals(step("notebooks").outputs.failed, "true", step("notebooks").log);
      assertEquals(step("comment").outcome, "success", step("comment").log);
      assertEquals(plan.result, "failure", "the job must fail on a failing notebook");
      const comments = gh.comments("wod/wod").filter((c) => c.issue === 31);
      assertEquals(comments.length, 1);
      const body = comments[0].body;
      // The seat plan and the notebook table in one comment.
      assertStringIncludes(body, "<!-- wod:wod-plan -->");
      assertStringIncludes(body, "### Notebook runs (`wod test-workshop`)");
      assertStringIncludes(body, "| WKSHP-Shell101 | WKSHP | **FAIL** | 4 | 3 | 1 | 0 |");
      assertStringIncludes(
        body,
        "workshops/WKSHP-Shell101/1-Shell-Basics.ipynb: cell 4 (line 2 of the cell): NameError: " +
          "name 'count_lines' is not defined",
      );
      assertStringIncludes(body, "> count_lines('letters.txt')");
      // The failing cell is also an annotation on the notebook file.
      const ann = step("notebooks").annotations.find((a) =>
        a.props.file === "workshops/WKSHP-Shell101/1-Shell-Basics.ipynb"
      );
      assert(ann, `no annotation on the notebook: ${JSON.stringify(step("notebooks").annotations)}`);
      assertEquals(gh.violations, [], "requests must match GitHub's OpenAPI description");
      assertEquals(res.leaks, []);
    } finally {
      await gh.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
