#!/usr/bin/env bash
# A CI job's restore check (README, "Restoring in CI"): restore the latest backup of NAME, run a
# check against the restored copy, and fail if anything is wrong with the backup.
#
# usage: scripts/ci-restore-check.sh NAME [CHECK_COMMAND...]
#   The backup location and credentials come from the environment (WALSYNC_BACKUP_URL, AWS_*).
#   CHECK_COMMAND runs with RESTORED_DB set to the restored file; it must exit 0. Default:
#   `sqlite3 "$RESTORED_DB" "PRAGMA quick_check"` must print ok.
#   WALSYNC: the walsync command (default: walsync).
# Exit: 0 when the restore and the check passed, or when NAME has no backup yet (restore's
#   --if-replica-exists: a database that was never backed up is not an error here; the job says so).
#   The restore's own exit code when it failed: >= 3 means the backup itself is missing, damaged or
#   unreachable (3 not found, 4 verification failed, 5 store unusable); 1 and 2 a runtime or usage
#   problem. 10 when the check failed.
set -uo pipefail
name=${1:?usage: ci-restore-check.sh NAME [CHECK_COMMAND...]}
shift
walsync=${WALSYNC:-walsync}
work=$(mktemp -d "${TMPDIR:-/tmp}/walsync-ci-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
export RESTORED_DB=$work/$name.db

result=$("$walsync" restore "$name" -o "$RESTORED_DB" --if-replica-exists --json)
rc=$?
if [ "$rc" -ne 0 ]; then
  case $rc in
    3) why="not found (no backup of that name at the requested time?)" ;;
    4) why="verification failed: the backup is damaged or incomplete" ;;
    5) why="the store could not be used (credentials, bucket, endpoint)" ;;
    *) why="restore failed" ;;
  esac
  echo "ci-restore-check: FAILED: restore of $name exited $rc: $why" >&2
  exit "$rc"
fi

field() { # field KEY: a top-level field of the restore's JSON, "" when absent
  if command -v jq >/dev/null 2>&1; then
    jq -r --arg k "$1" '.[$k] // "" | tostring' <<<"$result"
  else
    python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1" <<<"$result"
  fi
}
if [ "$(field skipped)" = "no-backup" ]; then
  echo "ci-restore-check: $name has no backup yet: nothing to check"
  exit 0
fi
echo "ci-restore-check: restored $name as of $(field time) (generation $(field generation), $(field segments) segment(s), $(field size) bytes)"

if [ $# -gt 0 ]; then
  "$@" || { echo "ci-restore-check: FAILED: the check ($*) exited $?" >&2; exit 10; }
else
  check=$(sqlite3 "$RESTORED_DB" "PRAGMA quick_check" 2>&1)
  [ "$check" = ok ] || { echo "ci-restore-check: FAILED: quick_check: $check" >&2; exit 10; }
fi
echo "ci-restore-check: ok"
