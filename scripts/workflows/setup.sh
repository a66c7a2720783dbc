#!/usr/bin/env bash
# Workflow step "Set up Deno and Debian packages": the Debian packages of .ci/apt-packages.txt
# (through sudo unless root) and Deno from npm (no third-party setup action). Idempotent: on a
# machine that already has them (the local workflow runner) it only runs `deno install`.
set -euo pipefail
DENO_VERSION=2.9.6
cd "${GITHUB_WORKSPACE:-.}"

sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo)

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' .ci/apt-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if command -v deno >/dev/null && deno --version | head -1 | grep -q "deno $DENO_VERSION"; then
  echo "Deno $DENO_VERSION is already installed: $(command -v deno)"
else
  prefix="${RUNNER_TEMP:?RUNNER_TEMP is not set}/deno"
  npm install --silent --no-fund --no-audit --prefix "$prefix" "deno@$DENO_VERSION"
  bin="$prefix/node_modules/@deno/linux-x64-glibc"
  "$bin/deno" --version | head -1
  echo "$bin" >> "$GITHUB_PATH"
  export PATH="$bin:$PATH"
fi
deno install --frozen --quiet
