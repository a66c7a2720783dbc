#!/usr/bin/env bash
# Workflow step: which environments a scheduled/pushed/dispatched run acts on, as a JSON list in
# the step output `environments`. REQUESTED (a dispatch input) wins; otherwise CONFIGURED (the
# repository variable WOD_ENVIRONMENTS, a JSON list or space/comma separated names).
set -euo pipefail
list="${REQUESTED:-}"
if [ -z "$list" ]; then
  list="$(printf '%s' "${CONFIGURED:-}" | tr -d '[]"' | tr ',' ' ')"
fi
json="["
sep=""
for name in $list; do
  if ! [[ "$name" =~ ^[a-z][a-z0-9-]{0,31}$ ]]; then
    echo "::error title=Bad environment name::Environment \"$name\" is not a valid environment name (expected ^[a-z][a-z0-9-]{0,31}\$)"
    exit 1
  fi
  if [ ! -f "environments/$name.yaml" ] && [ ! -f "private/environments/$name.yaml" ]; then
    echo "::error title=Unknown environment::Environment \"$name\" has no environments/$name.yaml"
    exit 1
  fi
  json="$json$sep\"$name\""
  sep=","
done
json="$json]"
echo "environments=$json" >> "$GITHUB_OUTPUT"
if [ "$json" = "[]" ]; then
  echo "No environment to act on: set the repository variable WOD_ENVIRONMENTS (e.g. [\"staging\",\"production\"])" >> "$GITHUB_STEP_SUMMARY"
fi
echo "Environments: $json"
