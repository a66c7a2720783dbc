#!/usr/bin/env bash
# sync-private.yml: merge the public repository's branch into "sync/public" (made from this
# checkout's HEAD). Outputs: changed (true when there is something new), upstream (its commit).
set -euo pipefail
: "${UPSTREAM_URL:?UPSTREAM_URL is not set}"
branch="${UPSTREAM_BRANCH:-main}"
git config user.name "wod sync"
git config user.email "wod-sync@users.noreply.github.com"
git fetch --no-tags --quiet "$UPSTREAM_URL" "$branch"
upstream=$(git rev-parse FETCH_HEAD)
echo "upstream=$upstream" >>"$GITHUB_OUTPUT"
if git merge-base --is-ancestor "$upstream" HEAD; then
  echo "Already up to date with the public $branch ($upstream)" | tee -a "$GITHUB_STEP_SUMMARY"
  echo "changed=false" >>"$GITHUB_OUTPUT"
  exit 0
fi
git checkout --quiet -B sync/public
if ! git merge --no-edit --quiet -m "Sync the public $branch ($upstream)" "$upstream"; then
  conflicts=$(git diff --name-only --diff-filter=U | tr '\n' ' ')
  git merge --abort
  echo "::error title=Sync conflict::Merging the public $branch ($upstream) conflicts in: $conflicts"
  echo "Merge conflict with the public $branch in: $conflicts" >>"$GITHUB_STEP_SUMMARY"
  exit 1
fi
echo "changed=true" >>"$GITHUB_OUTPUT"
echo "Merged the public $branch ($upstream) into sync/public" | tee -a "$GITHUB_STEP_SUMMARY"
