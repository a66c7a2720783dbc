#!/usr/bin/env bash
# sync-private.yml: validate the private overlay (private/) on top of the merged public tree, and
# run the leak check. Output: report (a markdown file for the pull request body).
set -uo pipefail
report="${RUNNER_TEMP:?RUNNER_TEMP is not set}/sync-report.md"
rc=0
{
  echo "## Overlay validation"
  echo
  echo '```'
} >"$report"
args=()
[ -d private ] && args=(--private private)
if deno task wod validate "${args[@]}" >>"$report" 2>&1; then :; else rc=1; fi
echo '```' >>"$report"
if [ -f scripts/cli/leak-check.ts ]; then
  { echo; echo "## Leak check"; echo; echo '```'; } >>"$report"
  if deno task wod leak-check >>"$report" 2>&1; then :; else rc=1; fi
  echo '```' >>"$report"
fi
echo "report=$report" >>"$GITHUB_OUTPUT"
cat "$report" >>"$GITHUB_STEP_SUMMARY"
cat "$report"
exit "$rc"
