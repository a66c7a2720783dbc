#!/usr/bin/env bash
# Workflow step: ansible-lint (offline) on ansible/ and `ansible-playbook --syntax-check` on every
# top-level playbook ansible/*.yml. Findings appear as file:line messages in the log.
set -euo pipefail
cd "${GITHUB_WORKSPACE:-.}"
shopt -s nullglob
playbooks=()
for f in ansible/*.yml ansible/*.yaml; do
  # A playbook is a YAML list of plays (first non-comment line starts with "- ").
  if grep -v -E '^\s*(#|$|---)' "$f" | head -1 | grep -q '^- '; then playbooks+=("$f"); fi
done
if [ "${#playbooks[@]}" = 0 ]; then
  echo "No playbook under ansible/: nothing to check"
  exit 0
fi
rc=0
for p in "${playbooks[@]}"; do
  if ansible-playbook --syntax-check -i localhost, "$p" >/tmp/wod-syntax.$$ 2>&1; then
    echo "syntax ok: $p"
  else
    echo "::error file=$p::ansible-playbook --syntax-check failed for $p"
    cat /tmp/wod-syntax.$$
    rc=1
  fi
done
rm -f /tmp/wod-syntax.$$
if ! ANSIBLE_LOCAL_TEMP="${RUNNER_TEMP:-/tmp}/ansible-lint" ansible-lint --offline -p "${playbooks[@]}"; then
  echo "::error::ansible-lint found problems (listed above as file:line: rule)"
  rc=1
fi
exit "$rc"
