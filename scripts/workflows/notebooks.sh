#!/usr/bin/env bash
# Workflow step "Notebooks": `wod test-workshop` on the sandbox backend of the local environment for
# the workshops a pull request changes (BASE_SHA..HEAD), or for every workshop when ALL=true (the
# scheduled run). The Markdown result table goes to the job summary and is appended to PLAN_FILE (the
# PR comment) when set. Outputs: file (the table), failed (true when a notebook or the run failed).
# Exits 0 so the comment is posted; a later step fails the job on failed=true.
set -uo pipefail
out="${RUNNER_TEMP:?RUNNER_TEMP is not set}/notebooks.md"
errlog="${RUNNER_TEMP}/notebooks.log"
failed=false

ids=()
if [ "${ALL:-false}" != true ]; then
  changed=$(git diff --name-only "${BASE_SHA:?BASE_SHA is not set}" HEAD -- workshops/ | cut -d/ -f2 | sort -u)
  for id in $changed; do
    [ -f "workshops/$id/workshop.yaml" ] || continue # deleted workshops have nothing to run
    if grep -Eq "^ +$id: \[" environments/local.yaml; then
      ids+=("$id")
    else
      echo "::notice title=Notebooks not run::$id has no seat range in environments/local.yaml"
    fi
  done
fi

finish() {
  cat "$out" >>"$GITHUB_STEP_SUMMARY"
  if [ -n "${PLAN_FILE:-}" ] && [ -f "$PLAN_FILE" ]; then printf '\n' >>"$PLAN_FILE" && cat "$out" >>"$PLAN_FILE"; fi
  echo "file=$out" >>"$GITHUB_OUTPUT"
  echo "failed=$failed" >>"$GITHUB_OUTPUT"
  exit 0
}

if [ "${ALL:-false}" != true ] && [ "${#ids[@]}" = 0 ]; then
  printf '### Notebook runs (`wod test-workshop`)\n\nNo workshop with a seat range in the local environment changed.\n' >"$out"
  finish
fi

# The sandbox backend needs root (namespaces, chroot).
sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo env "PATH=$PATH")
if ! "${sudo_[@]}" deno task wod sandbox up >"$errlog" 2>&1; then
  tail -n 20 "$errlog"
  echo "::error title=Notebooks not run::the sandbox backend did not come up (see the step log)"
  printf '### Notebook runs (`wod test-workshop`)\n\n**Not run**: the sandbox backend did not come up.\n' >"$out"
  failed=true
  finish
fi
"${sudo_[@]}" deno task wod test-workshop "${ids[@]}" --env local --format github --markdown "$out" 2>>"$errlog"
code=$?
if [ "$code" != 0 ]; then
  failed=true
  if [ ! -s "$out" ]; then
    tail -n 20 "$errlog"
    printf '### Notebook runs (`wod test-workshop`)\n\n**Failed**: wod test-workshop exited with %s.\n' "$code" >"$out"
  fi
fi
finish
