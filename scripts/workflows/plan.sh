#!/usr/bin/env bash
# Workflow step "Plan": `wod plan --base $BASE_SHA --format markdown` into a file, appended to the
# job summary. Outputs: file (the markdown), danger (true when the plan exits 2).
set -uo pipefail
out="${RUNNER_TEMP:?RUNNER_TEMP is not set}/plan.md"
deno task wod plan --base "${BASE_SHA:?BASE_SHA is not set}" --format markdown >"$out"
code=$?
if [ "$code" != 0 ] && [ "$code" != 2 ]; then
  echo "::error title=Plan failed::wod plan exited with $code"
  exit "$code"
fi
cat "$out" >>"$GITHUB_STEP_SUMMARY"
cat "$out"
echo "file=$out" >>"$GITHUB_OUTPUT"
if [ "$code" = 2 ]; then echo "danger=true" >>"$GITHUB_OUTPUT"; else echo "danger=false" >>"$GITHUB_OUTPUT"; fi
