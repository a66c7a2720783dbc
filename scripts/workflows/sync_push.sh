#!/usr/bin/env bash
# sync-private.yml: push sync/public and open (or update) its one pull request into the default
# branch, with the validation report as the body.
set -euo pipefail
git push --force --quiet origin sync/public
body="${RUNNER_TEMP:?}/sync-body.md"
{
  if [ "${VALID:-}" = success ]; then echo "The private overlay validates on the merged public tree."; else
    echo "**The private overlay does not validate on the merged public tree**: fix it on this branch before merging."
  fi
  echo
  if [ -n "${REPORT_FILE:-}" ] && [ -f "$REPORT_FILE" ]; then cat "$REPORT_FILE"; fi
} >"$body"
deno run -A scripts/workflows/github.ts pull --head sync/public --base "${BASE_BRANCH:-main}" \
  --title "Sync public changes" --file "$body"
