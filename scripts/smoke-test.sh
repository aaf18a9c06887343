#!/usr/bin/env bash
# Runs a walsync executable the way a user would, on file:// (no server): --version, then
# snapshot -> list -> restore -> verify of a small WAL database, and `cmp` of the restored file
# with the source. Used by the release workflow on each target's own runner (the compiled binary,
# then the `walsync` command of the installed wheel), and by the tests with scripts/walsync.
# usage: scripts/smoke-test.sh WALSYNC [EXPECTED_VERSION]
set -euo pipefail
bin=$1
# a relative path must survive the cd below
case "$bin" in */*) bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" ;; esac
expected=${2:-}
fail() { echo "smoke-test: FAILED: $*" >&2; exit 1; }
py=${PYTHON:-$(command -v python3 || command -v python)} || fail "python is needed to write the test database"
work=$(mktemp -d "${TMPDIR:-/tmp}/walsync-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

version=$("$bin" --version) || fail "$bin --version exited $?"
echo "smoke-test: $version"
[[ "$version" == "walsync "* ]] || fail "unexpected --version output: $version"
[ -z "$expected" ] || [[ "$version" == "walsync $expected "* ]] || fail "expected version $expected, got: $version"

cd "$work"
# A database in WAL mode with some rows, written and closed by Python's sqlite3 (closing the last
# connection checkpoints it, so the file itself is the state to compare with).
"$py" - <<'PY'
import sqlite3
db = sqlite3.connect("app.db", isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
db.execute("BEGIN")
for i in range(2000):
    db.execute("INSERT INTO t(v) VALUES (?)", (bytes([i % 251]) * (100 + i % 900),))
db.execute("COMMIT")
db.close()
PY
url=file://./store # relative: the same on every OS
"$bin" snapshot app.db -b "$url" --json >snapshot.json || fail "snapshot exited $?"
"$bin" list -b "$url" --json >list.json || fail "list exited $?"
grep -q '"name": "app"' list.json || fail "list does not show app: $(cat list.json)"
"$bin" restore app -o restored.db -b "$url" --json >restore.json || fail "restore exited $?"
cmp app.db restored.db || fail "the restored database differs from the source"
"$bin" verify -b "$url" >/dev/null || fail "verify exited $?"
echo "smoke-test: ok (snapshot, list, restore byte-exact, verify)"
