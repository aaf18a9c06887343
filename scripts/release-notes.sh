#!/usr/bin/env bash
# Prints the CHANGELOG.md section of a version (without its heading), for the GitHub Release notes.
# usage: scripts/release-notes.sh VERSION [CHANGELOG]     exits 1 if the section is missing or empty
set -euo pipefail
version=${1:?usage: release-notes.sh VERSION [CHANGELOG]}
file=${2:-$(dirname "${BASH_SOURCE[0]}")/../CHANGELOG.md}
notes=$(awk -v v="$version" '
  /^## / { if (found) exit; h = $0; sub(/^## \[?/, "", h); sub(/[] ].*$/, "", h); found = (h == v); next }
  found { print }
' "$file")
if [ -z "$(tr -d '[:space:]' <<<"$notes")" ]; then
  echo "release-notes.sh: no entry for $version in $file (add a \"## $version\" section)" >&2
  exit 1
fi
printf '%s\n' "$notes" | sed -e '/./,$!d' # without leading blank lines
