#!/usr/bin/env bash
# Run the project's pinned Deno with the given arguments: scripts/deno.sh run -A main.ts ...
# Uses a `deno` on PATH if it is exactly the pinned version; otherwise installs the pinned version
# once from npm into $REPO/.tools/deno (the npm package carries the real binary; jsr/deno.land
# download hosts are unreachable here and in CI). Nothing but Deno's own output goes to stdout;
# installation chatter goes to stderr.
set -euo pipefail

DENO_VERSION=2.9.6
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$REPO/.tools/deno
BIN=$PREFIX/node_modules/deno/deno

# True if the binary "$1" runs and reports exactly the pinned version.
is_pinned() {
  local v
  v=$("$1" --version 2>/dev/null | head -n1) || return 1
  [ "$v" != "${v#"deno $DENO_VERSION "}" ]
}

# 1. A suitable deno already on PATH (e.g. a developer's own install, or CI's setup-deno).
if sys=$(command -v deno 2>/dev/null) && [ "$sys" != "$BIN" ] && is_pinned "$sys"; then
  exec "$sys" "$@"
fi

# 2. Our own cached copy (fast path: no lock, no npm).
if [ -x "$BIN" ] && is_pinned "$BIN"; then
  exec "$BIN" "$@"
fi

# 3. Install once. The lock keeps parallel invocations (e.g. editor + test run) from running two
#    npm installs into the same directory.
mkdir -p "$PREFIX"
exec 9>"$PREFIX/.install.lock"
flock 9
if ! { [ -x "$BIN" ] && is_pinned "$BIN"; }; then
  echo "deno.sh: installing Deno $DENO_VERSION into $PREFIX (npm) ..." >&2
  command -v npm >/dev/null || { echo "deno.sh: npm is required to install Deno" >&2; exit 1; }
  rm -rf "$PREFIX/node_modules" "$PREFIX/package.json" "$PREFIX/package-lock.json"
  # stdout of npm goes to stderr too: callers may capture deno's stdout.
  npm install --prefix "$PREFIX" "deno@$DENO_VERSION" --no-audit --no-fund --loglevel=error >&2
  # The package's postinstall hard-links the platform binary (from @deno/<platform>) to
  # node_modules/deno/deno. If install scripts are disabled (npm ignore-scripts=true), do that
  # step ourselves.
  if [ ! -x "$BIN" ]; then
    for cand in "$PREFIX"/node_modules/@deno/*/deno; do
      if [ -x "$cand" ] && is_pinned "$cand"; then ln -f "$cand" "$BIN" 2>/dev/null || cp "$cand" "$BIN"; break; fi
    done
  fi
  if ! { [ -x "$BIN" ] && is_pinned "$BIN"; }; then
    echo "deno.sh: installed package has no working Deno $DENO_VERSION binary at $BIN" >&2
    exit 1
  fi
  echo "deno.sh: $("$BIN" --version | head -n1)" >&2
fi
exec 9>&-
exec "$BIN" "$@"
