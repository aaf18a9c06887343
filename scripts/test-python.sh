#!/usr/bin/env bash
# Tests of the Python package (python/), as a user installs it: `pip install ./python` into a fresh
# venv with no package index (the in-tree build backend needs nothing), then its pytest suite against
# the S3 server of WALSYNC_TEST_S3_ENDPOINT (default: the local RGW, scripts/rgw.sh) and file://, with
# WALSYNC_BIN=scripts/walsync (deno run). pytest comes from the base interpreter (the venv sees its
# site-packages); if no python3 has it, Debian's python3-pytest is installed with apt-get.
# usage: scripts/test-python.sh [pytest args]
# Last line: `python: N passed, M failed`. Exits non-zero on any failure, and when no test ran
# (pytest's exit 5).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
log() { echo "test-python.sh: $*" >&2; }

has_tools() { "$1" -c 'import venv, ensurepip' >/dev/null 2>&1 && "$1" -m pytest --version >/dev/null 2>&1; }
PY=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && has_tools "$cand"; then PY=$(command -v "$cand"); break; fi
done
if [ -z "$PY" ]; then
  log "no python3 with venv and pytest: installing Debian's python3-venv python3-pytest"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq python3-venv python3-pytest >&2 ||
    { apt-get update -qq >&2 && apt-get install -y -qq python3-venv python3-pytest >&2; }
  has_tools /usr/bin/python3 || { log "python3-venv/python3-pytest did not install"; exit 1; }
  PY=/usr/bin/python3
fi

if [ -z "${WALSYNC_TEST_S3_ENDPOINT:-}" ]; then
  scripts/rgw.sh ensure
  eval "$(scripts/rgw.sh env)"
  export WALSYNC_TEST_S3_ENDPOINT=$AWS_ENDPOINT_URL_S3
fi
scripts/deno.sh --version >/dev/null # install Deno before the tests time anything

work=$(mktemp -d "${TMPDIR:-/tmp}/walsync-python.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "$("$PY" --version) from $PY; venv in $work/venv"
"$PY" -m venv --system-site-packages "$work/venv"
# Exactly what a user types (no --no-index): there is no package index here, so this passes only if
# the build needs nothing from one. pip's build isolation stays on, as for users.
"$work/venv/bin/python" -m pip install --disable-pip-version-check -q ./python >&2

export WALSYNC_BIN=$REPO/scripts/walsync WALSYNC_TEST_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1
set +e
(cd "$work" && "$work/venv/bin/python" -m pytest "$REPO/python/tests" -p no:cacheprovider -q -rs "$@") 2>&1 |
  tee "$work/pytest.log"
rc=${PIPESTATUS[0]}
set -e

summary=$(grep -E '^=* *[0-9]+ (passed|failed|error)' "$work/pytest.log" | tail -n1 || true)
count() { grep -oE "[0-9]+ $1" <<<"$summary" | head -n1 | cut -d' ' -f1 || true; }
passed=$(count passed); failed=$(count failed); errors=$(count 'error')
passed=${passed:-0}; failed=$((${failed:-0} + ${errors:-0}))
if [ "$rc" -eq 5 ]; then
  log "pytest collected no tests"; failed=$((failed + 1))
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # pytest failed without a failed test (usage error, crash): never report green
fi
echo "python: $passed passed, $failed failed"
[ "$rc" -eq 0 ] || exit 1
