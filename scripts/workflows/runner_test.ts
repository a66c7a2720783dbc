// The local workflow runner on our real workflows: validate.yml for a sample pull_request event
// (a temp git copy of the repo with a change) and order.yml for a sample workflow_dispatch event,
// checking step outcomes, outputs, job summaries and annotations. Steps calling a `wod` command
// that does not exist (yet) are skipped, so the test grows with the CLI. The PR comment and the sync
// pull request go to scripts/testing/github_server.ts, which checks every request against GitHub's
// OpenAPI description (@octokit/openapi); the tests assert it saw no violation.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../common/assert.ts";
import { exec } from "../common/exec.ts";
import { runWorkflow, type StepInfo } from "./runner.ts";
import { cloneWorkingTree, commitAll } from "./workspace.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Skip a step whose script (inline or scripts/workflows/*.sh) calls a wod command missing in `ws`. */
export function missingCommand(ws: string, extraSkips: Record<string, string> = {}) {
  return (_job: string, step: StepInfo): string | undefined => {
    if (step.id && extraSkips[step.id]) return extraSkips[step.id];
    let text = step.run ?? "";
    for (const m of text.matchAll(/scripts\/workflows\/([a-z_]+\.sh)/g)) {
      try {
        text += "\n" + Deno.readTextFileSync(join(ws, "scripts/workflows", m[1]));
      } catch { /* the step itself will fail and say so */ }
    }
    for (const m of text.matchAll(/\bwod ([a-z][a-z-]*)/g)) {
      if (!existsSync(join(ws, "scripts/cli", `${m[1]}.ts`))) return `wod ${m[1]} does not exist yet`;
    }
    return undefined;
  };
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "wod-runner-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * A temp git copy of the repo in `dir`/ws where WKSHP-Shell101 uses seats 60-69 in
 * environments/local.yaml (this area's seats on the shared sandbox, docs/testbed.md), committed.
 */
async function seats60to69Workspace(dir: string, message: string): Promise<{ ws: string; sha: string }> {
  const ws = join(dir, "ws");
  await cloneWorkingTree(ROOT, ws);
  const envFile = join(ws, "environments/local.yaml");
  const text = await Deno.readTextFile(envFile);
  await Deno.writeTextFile(
    envFile,
    text.replace(/WKSHP-Shell101: \[\d+, \d+\]/, "WKSHP-Shell101: [60, 69]"),
  );
  return { ws, sha: await commitAll(ws, message) };
}

Deno.test("runner: step files, masking and the mask-secrets rule at run time", async () => {
  await withTemp(async (dir) => {
    const wf = join(dir, "wf.yml");
    await Deno.writeTextFile(
      wf,
      `name: t
on: workflow_dispatch
env:
  GREETING: hello
jobs:
  one:
    runs-on: ubuntu-latest
    permissions: {}
    outputs:
      word: \${{ steps.a.outputs.word }}
    steps:
      - id: a
        env:
          TOKEN: \${{ secrets.API_TOKEN }}
        run: |
          echo "word=$GREETING" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=x" >> "$GITHUB_ENV"
          echo "using $TOKEN"
          echo "# Summary of one" >> "$GITHUB_STEP_SUMMARY"
          test -f "$GITHUB_EVENT_PATH"
      - id: b
        run: |
          echo "seen=$FROM_ENV" >> "$GITHUB_OUTPUT"
          pw=generated-pw-123
          echo "::add-mask::$pw"
          echo "password=$pw" >> "$GITHUB_OUTPUT"
          echo "the password is $pw"
      - id: c
        run: echo "api_token=unmasked-456" >> "$GITHUB_OUTPUT"
      - id: d
        run: echo never
      - id: e
        if: \${{ failure() }}
        run: echo "::warning::cleanup after failure"
`,
    );
    const res = await runWorkflow({
      workflow: wf,
      workspace: dir,
      tempDir: join(dir, "run"),
      event: { name: "workflow_dispatch", payload: {} },
      secrets: { API_TOKEN: "s3cr3t-value" },
    });
    const job = res.jobs[0];
    const [a, b, c, d, e] = job.steps;
    assertEquals([a.outcome, b.outcome, c.outcome, d.outcome, e.outcome], [
      "success",
      "success",
      "failure",
      "skipped",
      "success",
    ]);
    assertEquals(job.outputs, { word: "hello" });
    assertEquals(b.outputs.seen, "x");
    assertStringIncludes(a.log, "using ***");
    assertStringIncludes(b.log, "the password is ***");
    assert(!b.log.includes("generated-pw-123"));
    assertMatch(c.annotations[0].message, /wrote "api_token" without ::add-mask:: first/);
    assertEquals(e.annotations, [{ level: "warning", message: "cleanup after failure", props: {} }]);
    assertEquals(job.summary, "# Summary of one\n");
    assertEquals(job.result, "failure");
  });
});

Deno.test("runner: order.yml records a RESET from a sample workflow_dispatch event", async () => {
  await withTemp(async (dir) => {
    const { ws, sha } = await seats60to69Workspace(dir, "seats 60-69 for the workflow test");
    // Apply runs once the CLI, the backend seat actions and the shared sandbox all exist.
    const sandbox = await import("../backend/sandbox.ts") as { ensureSandbox?: () => Promise<unknown> };
    const applyExists = existsSync(join(ws, "scripts/cli/apply.ts")) &&
      existsSync(join(ws, "scripts/backend/seats.ts")) && sandbox.ensureSandbox !== undefined;
    if (applyExists) await sandbox.ensureSandbox!();
    const lines: string[] = [];
    const res = await runWorkflow({
      workflow: join(ws, ".github/workflows/order.yml"),
      workspace: ws,
      tempDir: join(dir, "run"),
      sha,
      actor: "operator1",
      event: {
        name: "workflow_dispatch",
        payload: {
          inputs: {
            env: "local",
            action: "RESET",
            workshop: "WKSHP-Shell101",
            seat: "61-62",
            reason: "stuck",
          },
        },
      },
      skip: missingCommand(ws, applyExists ? {} : { apply: "wod apply cannot run here yet" }),
      log: (l) => lines.push(l),
    });
    assertEquals(res.runName, "RESET WKSHP-Shell101 seat 61-62 on local by operator1: stuck");
    const record = res.jobs.find((j) => j.id === "record")!;
    assertEquals(record.result, "success", lines.join("\n"));
    assertEquals(record.concurrency, { group: "wod-order-local-61-62", cancelInProgress: false });
    assertEquals(record.outputs, { order: "dispatch-wod-wod-1" });
    assertStringIncludes(record.summary, "### Order on local, requested by operator1");
    assertStringIncludes(record.summary, "Reason: stuck");
    assertStringIncludes(
      record.summary,
      "Recorded order dispatch-wod-wod-1: RESET jup1/61-62 WKSHP-Shell101",
    );
    // The order is in recorded state (the workspace's local git store).
    const state = await exec("deno", ["run", "-A", "scripts/wod.ts", "state", "--env", "local", "--json"], {
      cwd: ws,
      env: { ...Deno.env.toObject(), WOD_ROOT: ws },
    });
    assertStringIncludes(state.stdout, "dispatch-wod-wod-1");
    const apply = res.jobs.find((j) => j.id === "apply")!;
    assertEquals(apply.concurrency, { group: "wod-apply-local", cancelInProgress: false });
    assertEquals(apply.environment, "local");
    const applyStep = apply.steps.find((s) => s.id === "apply")!;
    if (applyExists) {
      assertEquals(apply.result, "success", lines.join("\n"));
      assertStringIncludes(apply.summary, "### wod apply on local");
    } else {
      assertMatch(applyStep.skipReason ?? "", /^wod apply (does not exist|cannot run here) yet$/);
    }
    assertEquals(res.leaks, []);
  });
});

Deno.test("runner: order.yml refuses a bad request with a precise message", async () => {
  await withTemp(async (dir) => {
    const ws = join(dir, "ws");
    const sha = await cloneWorkingTree(ROOT, ws);
    const res = await runWorkflow({
      workflow: join(ws, ".github/workflows/order.yml"),
      workspace: ws,
      tempDir: join(dir, "run"),
      sha,
      jobs: ["record"],
      event: {
        name: "workflow_dispatch",
        payload: {
          inputs: { env: "local", action: "PURGE", workshop: "WKSHP-Shell101", seat: "3-5", reason: "x" },
        },
      },
      skip: missingCommand(ws),
    });
    // The refusal is `wod order`'s (validateOrder's sentence), not a copy of the rule in the workflow.
    const rec = res.jobs[0].steps.find((s) => s.id === "record")!;
    assertEquals(rec.outcome, "failure");
    assertEquals(
      rec.annotations[0].message,
      "PURGE takes one seat, got the range 3,5 (only RESET takes a range)",
    );
    assertStringIncludes(res.jobs[0].summary, "Order refused: PURGE takes one seat, got the range 3,5");
  });
});

Deno.test("runner: validate.yml on a pull request that breaks a workshop and one that is clean", async () => {
  const { startGithubServer } = await import("../testing/github_server.ts");
  const gh = await startGithubServer();
  try {
    gh.createRepo("wod/wod");
    await withTemp(async (dir) => {
      const ws = join(dir, "ws");
      const base = await cloneWorkingTree(ROOT, ws);
      // A PR that breaks a workshop: the checks job must fail on `wod validate` with an annotation.
      const wsFile = join(ws, "workshops/WKSHP-Shell101/workshop.yaml");
      const original = await Deno.readTextFile(wsFile);
      await Deno.writeTextFile(wsFile, original + "\nnot_a_field: 1\n");
      const broken = await commitAll(ws, "break the workshop");
      const pr = (head: string) => ({
        name: "pull_request",
        payload: {
          action: "synchronize",
          number: 12,
          pull_request: {
            number: 12,
            base: { sha: base, ref: "main", repo: { full_name: "wod/wod" } },
            head: { sha: head, ref: "feature", repo: { full_name: "wod/wod" } },
          },
        },
      });
      const lines: string[] = [];
      const common = {
        workflow: join(ws, ".github/workflows/validate.yml"),
        workspace: ws,
        repository: "wod/wod",
        apiUrl: gh.url,
        log: (l: string) => lines.push(l),
        // types and tests: the CI run that runs this test already does both (and tests would recurse).
        skip: missingCommand(ws, { types: "covered by .ci/run", tests: "covered by .ci/run" }),
      };
      const res1 = await runWorkflow({
        ...common,
        tempDir: join(dir, "run1"),
        sha: broken,
        event: pr(broken),
        jobs: ["checks"],
      });
      assertEquals(res1.concurrency, { group: "validate-12", cancelInProgress: true });
      const checks = res1.jobs.find((j) => j.id === "checks")!;
      const by = (id: string) => checks.steps.find((s) => s.id === id)!;
      assertEquals(by("validate").outcome, "failure", lines.join("\n"));
      const ann = by("validate").annotations.find((a) =>
        a.props.file === "workshops/WKSHP-Shell101/workshop.yaml"
      );
      assert(ann, `no annotation on the workshop: ${JSON.stringify(by("validate").annotations)}`);
      assertMatch(ann.message, /not_a_field/);
      // The other checks still ran after the failure (if: !cancelled()).
      assertEquals(by("workflows").outcome, "success", by("workflows").log);
      assert(["success", "failure"].includes(by("ansible").outcome), "the Ansible checks must run");
      assertEquals(by("types").skipReason, "covered by .ci/run");
      assertEquals(checks.result, "failure");

      // A clean PR: checks pass; the plan job posts ONE comment, updated on the next push.
      await Deno.writeTextFile(wsFile, original.replace(/^(title: .*)$/m, "$1 (revised)"));
      const clean = await commitAll(ws, "a clean change");
      const res2 = await runWorkflow({ ...common, tempDir: join(dir, "run2"), sha: clean, event: pr(clean) });
      const checks2 = res2.jobs.find((j) => j.id === "checks")!;
      // Our steps must pass on a clean change. (fmt, lint and ansible-lint judge the whole repo, which
      // .ci/run and the Ansible owners keep clean; here they only have to run.)
      for (const id of ["setup", "validate", "workflows"]) {
        const s = checks2.steps.find((x) => x.id === id)!;
        assertEquals(s.outcome, "success", `step ${s.name} failed:\n${s.log}\n${lines.join("\n")}`);
      }
      for (const id of ["fmt", "lint", "ansible"]) {
        assert(checks2.steps.find((x) => x.id === id)!.outcome !== "skipped", `step ${id} did not run`);
      }
      const plan = res2.jobs.find((j) => j.id === "plan")!;
      const planStep = plan.steps.find((s) => s.id === "plan")!;
      if (planStep.outcome === "success") {
        assertStringIncludes(plan.summary, "WKSHP-Shell101");
        const comment = plan.steps.find((s) => s.id === "comment")!;
        assertEquals(comment.outcome, "success", comment.log);
        await runWorkflow({
          ...common,
          tempDir: join(dir, "run3"),
          sha: clean,
          event: pr(clean),
          jobs: ["plan"],
        });
        const comments = gh.comments("wod/wod").filter((c) => c.issue === 12);
        assertEquals(comments.length, 1, "the plan comment must be updated, not repeated");
        assertStringIncludes(comments[0].body, "<!-- wod:wod-plan -->");
      } else {
        assertEquals(planStep.skipReason, "wod plan does not exist yet", planStep.log);
        assertEquals(plan.steps.find((s) => s.id === "comment")!.outcome, "skipped");
      }
      assertEquals(gh.violations, [], "requests must match GitHub's OpenAPI description");
      assertEquals(res2.leaks, []);
    });
  } finally {
    await gh.close();
  }
});

Deno.test("runner: apply.yml fans out over WOD_ENVIRONMENTS, one queue per environment", async () => {
  await withTemp(async (dir) => {
    const ws = join(dir, "ws");
    const sha = await cloneWorkingTree(ROOT, ws);
    const common = {
      workflow: join(ws, ".github/workflows/apply.yml"),
      workspace: ws,
      sha,
      skip: missingCommand(ws),
    };
    const res = await runWorkflow({
      ...common,
      tempDir: join(dir, "run1"),
      vars: { WOD_ENVIRONMENTS: '["local"]' },
      event: { name: "workflow_dispatch", payload: { inputs: { "dry-run": true } } },
    });
    assertEquals(res.runName, "apply configured environments (workflow_dispatch)");
    const targets = res.jobs.find((j) => j.id === "targets")!;
    assertEquals(targets.outputs, { environments: '["local"]' });
    const applies = res.jobs.filter((j) => j.id === "apply");
    assertEquals(applies.map((j) => [j.matrix, j.environment, j.concurrency]), [
      [{ environment: "local" }, "local", { group: "wod-apply-local", cancelInProgress: false }],
    ]);
    const step = applies[0].steps.find((s) => s.id === "apply")!;
    if (!step.skipReason) {
      assertEquals(step.outcome, "success", step.log);
      assertStringIncludes(applies[0].summary, "### wod apply on local");
    }
    // An unknown environment stops the run before any apply, with a precise message.
    const bad = await runWorkflow({
      ...common,
      tempDir: join(dir, "run2"),
      event: { name: "workflow_dispatch", payload: { inputs: { environment: "nowhere" } } },
    });
    const t = bad.jobs.find((j) => j.id === "targets")!;
    assertEquals(t.result, "failure");
    assertEquals(
      t.steps.find((s) => s.id === "targets")!.annotations[0].message,
      'Environment "nowhere" has no environments/nowhere.yaml',
    );
    assertEquals(bad.jobs.find((j) => j.id === "apply")!.result, "skipped");
  });
});

Deno.test("runner: `wod order --dispatch` inputs are exactly what order.yml declares (OpenAPI-checked server)", async () => {
  const { startGithubServer } = await import("../testing/github_server.ts");
  const gh = await startGithubServer();
  try {
    gh.createRepo("wod/wod", { workflows: ["order.yml"] });
    await withTemp(async (dir) => {
      const { ws, sha } = await seats60to69Workspace(dir, "seats 60-69");
      await exec("deno", [
        "run",
        "-A",
        "scripts/wod.ts",
        "order",
        "reset",
        "--env",
        "local",
        "--workshop",
        "WKSHP-Shell101",
        "--seat",
        "66",
        "--customer",
        "c-42",
        "--dispatch",
      ], {
        cwd: ws,
        env: {
          ...Deno.env.toObject(),
          WOD_ROOT: ws,
          GITHUB_API_URL: gh.url,
          GITHUB_REPOSITORY: "wod/wod",
          GITHUB_TOKEN: "t0ken",
        },
      });
      assertEquals(gh.violations, [], "the dispatch must match GitHub's OpenAPI description");
      assertEquals(gh.dispatches.length, 1);
      const inputs = gh.dispatches[0].inputs as Record<string, string>;
      // The runner refuses inputs order.yml does not declare, as GitHub does (422).
      const res = await runWorkflow({
        workflow: join(ws, ".github/workflows/order.yml"),
        workspace: ws,
        tempDir: join(dir, "run"),
        sha,
        jobs: ["record"],
        event: { name: "workflow_dispatch", payload: { inputs } },
        skip: missingCommand(ws),
      });
      const record = res.jobs.find((j) => j.id === "record")!;
      assertEquals(record.result, "success", record.steps.map((s) => s.log).join("\n"));
      assertEquals(record.outputs.order, inputs.id);
      assertEquals(res.runName, `RESET WKSHP-Shell101 seat 66 on local by octocat: ${inputs.id}`);
    });
  } finally {
    await gh.close();
  }
});

Deno.test("runner: expire.yml runs expiry then apply for the requested environment", async () => {
  await withTemp(async (dir) => {
    const ws = join(dir, "ws");
    const sha = await cloneWorkingTree(ROOT, ws);
    const res = await runWorkflow({
      workflow: join(ws, ".github/workflows/expire.yml"),
      workspace: ws,
      tempDir: join(dir, "run"),
      sha,
      event: { name: "workflow_dispatch", payload: { inputs: { environment: "local" } } },
      // An empty recorded state: nothing expires and apply has nothing to do on the sandbox.
      skip: missingCommand(ws),
    });
    const job = res.jobs.find((j) => j.id === "expire")!;
    assertEquals(job.concurrency, { group: "wod-apply-local", cancelInProgress: false });
    const exp = job.steps.find((s) => s.id === "expire")!;
    if (!exp.skipReason) assertEquals(exp.outcome, "success", exp.log);
    const apply = job.steps.find((s) => s.id === "apply")!;
    if (!apply.skipReason) assertEquals(apply.outcome, "success", apply.log);
    assertEquals(job.result, "success");
  });
});

Deno.test("runner: sync-private.yml merges the public main, validates the private overlay and opens one pull request", async () => {
  const { startGithubServer } = await import("../testing/github_server.ts");
  const gh = await startGithubServer();
  try {
    await withTemp(async (dir) => {
      // The public repository, and a private copy with a private/ overlay whose GitHub remote is a
      // local bare repository, known to the OpenAPI-checked API server as wod/private's branches.
      const pub = join(dir, "public");
      await cloneWorkingTree(ROOT, pub);
      const ws = join(dir, "private");
      await exec("git", ["clone", "-q", pub, ws]);
      const remote = join(dir, "private.git");
      await exec("git", ["init", "-q", "--bare", "-b", "main", remote]);
      await exec("git", ["remote", "set-url", "origin", remote], { cwd: ws });
      gh.createRepo("wod/private", { gitDir: remote });
      // A private workshop whose id and content appear nowhere in the public tree (leak-check).
      const id = `WKSHP-Priv${crypto.randomUUID().slice(0, 8)}`;
      const wdir = join(ws, "private/workshops", id);
      await Deno.mkdir(wdir, { recursive: true });
      const shell = await Deno.readTextFile(join(ws, "workshops/WKSHP-Shell101/workshop.yaml"));
      await Deno.writeTextFile(join(wdir, "workshop.yaml"), shell.replace(/^id: .*$/m, `id: ${id}`));
      const notebook = (text: string) =>
        JSON.stringify({
          cells: [{ cell_type: "markdown", metadata: {}, source: [text] }],
          metadata: {},
          nbformat: 4,
          nbformat_minor: 5,
        });
      await Deno.writeTextFile(join(wdir, "0-ReadMeFirst.ipynb"), notebook(`# ${crypto.randomUUID()}`));
      await commitAll(ws, "private overlay");
      await exec("git", ["push", "-q", "origin", "main"], { cwd: ws });
      // Something new upstream.
      await Deno.writeTextFile(join(pub, "docs/NEWS.md"), "# News\n\nSomething new upstream.\n");
      await commitAll(pub, "public news");
      const lines: string[] = [];
      const common = {
        workflow: join(ws, ".github/workflows/sync-private.yml"),
        workspace: ws,
        repository: "wod/private",
        apiUrl: gh.url,
        vars: { WOD_UPSTREAM_URL: pub },
        event: { name: "workflow_dispatch", payload: {} },
        log: (l: string) => lines.push(l),
      };
      const res = await runWorkflow({ ...common, tempDir: join(dir, "run") });
      const job = res.jobs.find((j) => j.id === "sync")!;
      const merge = job.steps.find((s) => s.id === "merge")!;
      assertEquals(merge.outcome, "success", lines.join("\n") + merge.log);
      assertEquals(merge.outputs.changed, "true");
      const overlay = job.steps.find((s) => s.id === "overlay")!;
      assertEquals(overlay.outcome, "success", overlay.log);
      assertStringIncludes(job.summary, "Merged the public main");
      assertStringIncludes(job.summary, "## Overlay validation");
      assert(existsSync(join(ws, "docs/NEWS.md")), "the public change is merged into sync/public");
      assertEquals(
        (await exec("git", ["branch", "--show-current"], { cwd: ws })).stdout.trim(),
        "sync/public",
      );
      // The branch is pushed and its one pull request into main is opened with the report as body.
      const push = job.steps[job.steps.length - 1];
      assertEquals(push.outcome, "success", lines.join("\n") + push.log);
      assertStringIncludes(push.log, "Pull request #1 created");
      const pushed = (await exec("git", ["rev-parse", "refs/heads/sync/public"], { cwd: remote })).stdout
        .trim();
      assertEquals(pushed, (await exec("git", ["rev-parse", "HEAD"], { cwd: ws })).stdout.trim());
      const pulls = () =>
        gh.pulls("wod/private").map((p) => ({
          number: p.number,
          head: p.head,
          base: p.base,
          state: p.state,
        }));
      assertEquals(pulls(), [{ number: 1, head: "sync/public", base: "main", state: "open" }]);
      assertStringIncludes(gh.pulls("wod/private")[0].body, "The private overlay validates");
      assertStringIncludes(gh.pulls("wod/private")[0].body, "## Overlay validation");

      // The next scheduled run (a new public change; the checkout is main again, the pull request
      // still open) updates the same pull request instead of opening a second one. The overlay was
      // validated above: skipping it here makes the body say so, which shows the update.
      await Deno.writeTextFile(join(pub, "docs/NEWS.md"), "# News\n\nMore news upstream.\n");
      await commitAll(pub, "more public news");
      await exec("git", ["checkout", "-q", "main"], { cwd: ws });
      const res2 = await runWorkflow({
        ...common,
        tempDir: join(dir, "run2"),
        skip: (_job, step) => step.id === "overlay" ? "validated in the first run" : undefined,
      });
      const job2 = res2.jobs.find((j) => j.id === "sync")!;
      const push2 = job2.steps[job2.steps.length - 1];
      assertEquals(push2.outcome, "success", lines.join("\n") + push2.log);
      assertStringIncludes(push2.log, "Pull request #1 updated");
      assertEquals(pulls(), [{ number: 1, head: "sync/public", base: "main", state: "open" }]);
      assertStringIncludes(gh.pulls("wod/private")[0].body, "does not validate");
      const pushed2 = (await exec("git", ["rev-parse", "refs/heads/sync/public"], { cwd: remote })).stdout
        .trim();
      assert(pushed2 !== pushed, "the second run pushes the new merge");
      assertEquals(gh.violations, [], "requests must match GitHub's OpenAPI description");
      assertEquals([res.leaks, res2.leaks], [[], []]);
      // Without the variable (the public repository itself) the job does not run.
      const none = await runWorkflow({
        workflow: join(ws, ".github/workflows/sync-private.yml"),
        workspace: ws,
        tempDir: join(dir, "run3"),
        event: { name: "workflow_dispatch", payload: {} },
      });
      assertEquals(none.jobs[0].result, "skipped");
    });
  } finally {
    await gh.close();
  }
});
