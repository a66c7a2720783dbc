#!/usr/bin/env bash
# Workflow step: write the environment's secrets (passed through env:, never expanded in the
# script) to files readable only by the runner user, and export their paths for `wod`:
# WOD_SSH_KEY_FILE, WOD_KNOWN_HOSTS_FILE, WOD_HUB_TOKEN_FILE, WOD_AGE_IDENTITY_FILE.
# Values that are not set are skipped (the command that needs one says so).
set -euo pipefail
umask 077
dir="${RUNNER_TEMP:?RUNNER_TEMP is not set}/wod-credentials"
mkdir -p "$dir"
write() { # NAME VALUE FILE
  if [ -n "$2" ]; then
    printf '%s\n' "$2" > "$dir/$3"
    echo "$1=$dir/$3" >> "$GITHUB_ENV"
    echo "$1 written"
  else
    echo "$1 not set (secret missing in this GitHub environment)"
  fi
}
write WOD_SSH_KEY_FILE "${SSH_KEY:-}" ssh_key
write WOD_KNOWN_HOSTS_FILE "${KNOWN_HOSTS:-}" known_hosts
write WOD_HUB_TOKEN_FILE "${HUB_TOKEN:-}" hub_token
write WOD_AGE_IDENTITY_FILE "${AGE_IDENTITY:-}" age_identity
