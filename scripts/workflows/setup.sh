#!/usr/bin/env bash
# Workflow step "Set up Deno and Debian packages": Deno from npm (no third-party setup action) and
# only the Debian packages the job needs (through sudo unless root), by profile:
#   state    git (and python3-jinja2 for validate): record orders, read state, plan (the default)
#   backend  + ssh client and ansible-core: apply, expire, drift, seat actions
#   lint     + ansible-core, ansible-lint, yamllint: the validate job's checks
#   full     every package of .ci/apt-packages.txt: the whole test suite (sandbox, browser, benches)
# On GitHub's Ubuntu runners `chromium` is a snap wrapper while Google Chrome is preinstalled, so
# `full` uses Chrome there (WOD_CHROMIUM). Idempotent: on a machine that already has everything (the
# local workflow runner) it only runs `deno install`. Prints how long the setup took.
set -euo pipefail
DENO_VERSION=2.9.6
cd "${GITHUB_WORKSPACE:-.}"
started=$SECONDS
profile="${1:-state}"

sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo)

case "$profile" in
  state) pkgs=(git ca-certificates python3-jinja2) ;;
  backend) pkgs=(git ca-certificates openssh-client ansible-core python3-passlib python3-jinja2) ;;
  lint) pkgs=(git ca-certificates ansible-core python3-passlib python3-jinja2 ansible-lint yamllint) ;;
  full) mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' .ci/apt-packages.txt) ;;
  *)
    echo "::error title=Unknown setup profile::setup.sh profile \"$profile\" is not one of state, backend, lint, full"
    exit 1
    ;;
esac
if [ "$profile" = full ] && [ -x /usr/bin/google-chrome ] && grep -qi ubuntu /etc/os-release; then
  kept=()
  for p in "${pkgs[@]}"; do [ "$p" = chromium ] || kept+=("$p"); done
  pkgs=("${kept[@]}")
  echo "WOD_CHROMIUM=/usr/bin/google-chrome" >> "${GITHUB_ENV:-/dev/null}"
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing Debian packages ($profile): ${missing[*]}"
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
echo "Setup ($profile profile) took $((SECONDS - started)) s"
