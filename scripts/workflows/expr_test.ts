import { assertEquals, assertThrows } from "../common/assert.ts";
import { evaluate, evaluateCondition, evaluateTemplate, interpolate } from "./expr.ts";

const ctx = {
  contexts: {
    inputs: { env: "local", seat: "3-4", dry: false },
    steps: { plan: { outputs: { danger: "true" }, outcome: "success" } },
    needs: { targets: { outputs: { environments: '["a","b"]' } } },
    github: {
      event: { pull_request: { number: 7, head: { repo: { full_name: "o/r" } } } },
      repository: "O/R",
    },
  },
  status: "success" as const,
};

Deno.test("expressions follow GitHub semantics for ||, ==, contexts and functions", () => {
  assertEquals(evaluate("inputs.env || 'all'", ctx), "local");
  assertEquals(evaluate("inputs.missing || 'all'", ctx), "all");
  assertEquals(evaluate("steps.plan.outputs.danger == 'TRUE'", ctx), true); // case-insensitive
  assertEquals(evaluate("github.event.pull_request.head.repo.full_name == github.repository", ctx), true);
  assertEquals(evaluate("fromJSON(needs.targets.outputs.environments)", ctx), ["a", "b"]);
  assertEquals(evaluate("format('{0}-{1}', inputs.env, inputs.seat)", ctx), "local-3-4");
  assertEquals(evaluate("!inputs.dry && contains('CREATE RESET', 'reset')", ctx), true);
  assertEquals(evaluate("github.event.pull_request.number > 6", ctx), true);
  assertEquals(evaluateTemplate("${{ fromJSON('[1,2]') }}", ctx), [1, 2]);
  assertEquals(interpolate("wod-apply-${{ inputs.env }}", ctx), "wod-apply-local");
  assertThrows(() => evaluate("inputs.env ==", ctx), /Unexpected "end of expression" at column 14/);
});

Deno.test("if: conditions imply success() unless a status function is used", () => {
  const failed = { ...ctx, status: "failure" as const };
  assertEquals(evaluateCondition("steps.plan.outcome == 'success'", failed), false);
  assertEquals(evaluateCondition("${{ !cancelled() && steps.plan.outcome == 'success' }}", failed), true);
  assertEquals(evaluateCondition("always()", failed), true);
  assertEquals(evaluateCondition(undefined, failed), false);
  assertEquals(evaluateCondition(undefined, ctx), true);
});
