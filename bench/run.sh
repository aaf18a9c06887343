#!/usr/bin/env bash
# The benchmark suite of issue #5 in one command: bash bench/run.sh [--quick] [--only N,…] [--write-results]
# (also `deno task bench …`). Starts the local Ceph RGW if needed (scripts/rgw.sh ensure) and
# uses it, unless WALSYNC_TEST_S3_ENDPOINT points at another S3 server (then the caller's AWS_*
# credentials and WALSYNC_TEST_BUCKET are used, as in scripts/test.sh). Prints one Markdown
# table on stdout, writes bench/out/results.json (and bench/RESULTS.md with --write-results);
# progress goes to stderr, child logs to bench/out/logs/. See bench/main.ts.
# Figure 8 (`--only 8`) runs walsync side by side with Litestream 0.3.13, which it installs from npm
# into the ignored .tools/litestream/ when missing (bench/litestream.ts; `--quick`: 1/10/100 idle and
# 1/10 busy databases, else the full matrix 1/10/100/1000 idle and 1/10/100 busy).
# Figure 9 (`--only 9`) times a latest restore of one ~80 MB database (~24 MiB with --quick) with walsync,
# Litestream 0.3.13 and plain parallel GETs of walsync's objects (bench/restore.ts); bench/diag_restore.ts
# breaks walsync's restore time down by stage.
# The local RGW is shared with test runs, and the test suite's outage test stops it for ~30 s; to
# keep that out of a benchmark, give the bench a cluster of its own (scripts/rgw.sh variables):
#   WALSYNC_RGW_BASE=/tmp/walsync-bench-rgw RGW_PORT=7490 deno task bench
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1

for tool in python3 sqlite3 aws openssl /usr/bin/time cmp; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
scripts/deno.sh --version >/dev/null # install the pinned Deno first (its chatter stays out of the table)

if [ -z "${WALSYNC_TEST_S3_ENDPOINT:-}" ]; then
  scripts/rgw.sh ensure
  eval "$(scripts/rgw.sh env)"
else
  export AWS_ENDPOINT_URL_S3=${AWS_ENDPOINT_URL_S3:-$WALSYNC_TEST_S3_ENDPOINT}
  export AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
  export WALSYNC_TEST_BUCKET=${WALSYNC_TEST_BUCKET:-walsync-test}
fi

# 1000 watched databases hold ~4 descriptors each (walsync's own, SQLite's db/-wal/-shm).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi

exec scripts/deno.sh run -A --frozen bench/main.ts "$@"
