#!/usr/bin/env bash
# Release build: one self-contained `walsync` executable per target with `deno compile`.
# usage: scripts/build.sh [TARGET...]   (default: the host; see `deno compile --help` for targets)
# `deno compile` downloads its runtime (denort) for each target; that host is not reachable from
# the development machines here, so releases are built by .github/workflows/release.yml.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$REPO/deno.json" | head -n1)
mkdir -p "$REPO/dist"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("")
for target in "${targets[@]}"; do
  out="$REPO/dist/walsync-$VERSION${target:+-$target}"
  "$REPO/scripts/deno.sh" compile -A --frozen ${target:+--target "$target"} --output "$out" "$REPO/main.ts"
  echo "built $out"
done
