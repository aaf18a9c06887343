#!/usr/bin/env bash
# The README's first command: installs the pinned Deno if needed, then runs scripts/demo.ts
# (back up a live database to a local directory with `walsync watch`, restore it, verify it).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$REPO/scripts/deno.sh" run -A --quiet --frozen "$REPO/scripts/demo.ts"
