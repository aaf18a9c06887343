#!/usr/bin/env bash
# Release build: one self-contained `walsync` executable per target with `deno compile`, packed as
#   dist/walsync-<version>-<target>.tar.gz   (walsync, README.md, LICENSE)   Linux and macOS
#   dist/walsync-<version>-<target>.zip      (walsync.exe, README.md, LICENSE) Windows
# usage: scripts/build.sh [TARGET...]      default: the host's target
# Targets: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-apple-darwin
#          aarch64-apple-darwin x86_64-pc-windows-msvc
# The version comes from deno.json (the one place it lives; `walsync --version` prints it too).
#
# NOTE: `deno compile` cannot run on the development machines of this project: it downloads its
# runtime (denort) for each target from a host that is not reachable from them (only the npm
# registry is). Releases are therefore built by .github/workflows/release.yml, on a native runner per
# target, which also runs each binary (scripts/smoke-test.sh) before publishing. Everything else
# (the smoke test, the install script, the Python wheels, the workflow lint) is tested here by
# scripts/test.sh, with scripts/walsync (deno run) standing in for the binary.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$REPO/deno.json" | head -n1)
[ -n "$VERSION" ] || { echo "build.sh: no version in deno.json" >&2; exit 1; }

host_target() {
  "$REPO/scripts/deno.sh" eval --quiet 'console.log(Deno.build.target)'
}

# Writes a .zip of directory $2 (its contents under $2's name) to $1, with Python's zipfile
# (present on every runner; `zip` is not on Windows).
zip_dir() {
  local py
  py=${PYTHON:-$(command -v python3 || command -v python)} || { echo "build.sh: python is needed to write a .zip" >&2; return 1; }
  (cd "$(dirname "$2")" && "$py" -m zipfile -c "$1" "$(basename "$2")")
}

mkdir -p "$REPO/dist"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("$(host_target)")
for target in "${targets[@]}"; do
  name="walsync-$VERSION-$target"
  stage="$REPO/dist/$name"
  exe=walsync
  [[ "$target" == *windows* ]] && exe=walsync.exe
  rm -rf "$stage"
  mkdir -p "$stage"
  if ! "$REPO/scripts/deno.sh" compile -A --frozen --target "$target" --output "$stage/$exe" "$REPO/main.ts"; then
    rm -rf "$stage"
    echo "build.sh: deno compile failed for $target. It downloads Deno's runtime (denort) for the target;" \
      "where that host is unreachable (as on this project's development machines) build with" \
      ".github/workflows/release.yml instead." >&2
    exit 1
  fi
  cp "$REPO/README.md" "$REPO/LICENSE" "$stage/"
  if [[ "$target" == *windows* ]]; then
    rm -f "$REPO/dist/$name.zip"
    zip_dir "$REPO/dist/$name.zip" "$stage"
    echo "built dist/$name.zip"
  else
    tar -C "$REPO/dist" -czf "$REPO/dist/$name.tar.gz" "$name"
    echo "built dist/$name.tar.gz"
  fi
done
