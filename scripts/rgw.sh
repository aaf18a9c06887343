#!/usr/bin/env bash
# A real S3 server for tests and benchmarks: single-node Ceph (1 mon, 1 OSD, no mgr) + radosgw
# (Ceph Object Gateway) on 127.0.0.1, all state under $WALSYNC_RGW_BASE (default /tmp/walsync-rgw,
# outside the repo so one install/cluster is shared by all clones and survives `git clean`).
# Binaries come from Debian 12 packages, downloaded and unpacked (no system install, ~70 MB of .debs).
# Why Ceph and not a mock: it enforces SigV4, If-None-Match, Content-MD5 and real multipart ETags.
#
# usage: rgw.sh install|init|start|stop|ensure|env|ceph ARGS
#   install: download + unpack the packages once (cached under $BASE/root)
#   init:    fresh cluster + S3 user (wipes old data), leaves the daemons running
#   start:   (re)start the daemons of an existing cluster;  stop: stop them (by saved PIDs)
#   ensure:  make sure a working server + test bucket exist (install/init/start as needed);
#            idempotent, ~0.2 s when already running. Progress goes to stderr.
#   env:     print `export` lines (credentials, endpoint, region, bucket) for `eval "$(rgw.sh env)"`
#   ceph:    run the ceph CLI against this cluster
# Environment: WALSYNC_RGW_BASE, RGW_PORT (7480), MON_PORT (3300; if unset and 3300 is taken, init
#   picks the next free port, so a second cluster can coexist), ACCESS/SECRET (test credentials),
#   WALSYNC_TEST_BUCKET (walsync-test), OBJSTORE=bluestore (default, persists across restarts) |
#   memstore (RAM only, lost on restart).
# S3: http://127.0.0.1:$RGW_PORT, path-style, region us-east-1.
set -euo pipefail
BASE=${WALSYNC_RGW_BASE:-/tmp/walsync-rgw}
R=$BASE/root
B=$R/usr/bin
CONF=$BASE/ceph.conf
RGW_PORT=${RGW_PORT:-7480}
MON_PORT_SET=${MON_PORT:+1}
MON_PORT=${MON_PORT:-3300}
ACCESS=${ACCESS:-AKIATESTKEY0000001}
SECRET=${SECRET:-testsecretkey0000000000000000000000001}
BUCKET=${WALSYNC_TEST_BUCKET:-walsync-test}
OBJSTORE=${OBJSTORE:-bluestore}
# The OSD's block file is sparse: it only takes the disk space that objects use. 8 GiB filled up
# after a few 1 GiB benchmark runs (Ceph then refuses every write), so the default is generous.
BLOCK_GIB=${RGW_BLOCK_GIB:-64}
ENDPOINT=http://127.0.0.1:$RGW_PORT
PACKAGES="radosgw ceph-mon ceph-osd"

log() { echo "rgw.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Run an unpacked Ceph binary. The library/python paths are set only for these commands (not
# exported globally) so that they cannot break other tools we run, e.g. `aws` (Python).
# Daemons are started as `"${CENV[@]}" daemon ... &` (a simple command: env execs the daemon), so
# that $! is the daemon's own PID.
CENV=(env "LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu/ceph"
  "PYTHONPATH=$R/usr/lib/python3/dist-packages")
cx() { "${CENV[@]}" "$@"; }
C() { cx "$B/ceph" -c "$CONF" "$@"; }

installed() { [ -x "$B/radosgw" ] && [ -x "$B/ceph-mon" ] && [ -x "$B/ceph-osd" ] && [ -x "$B/ceph" ]; }

# List the .deb names needed (those not already installed on the system) and download them.
download_debs() {
  local pkgs
  pkgs=$(apt-get install -s --no-install-recommends $PACKAGES 2>/dev/null | awk '/^Inst/{print $2}') || return 1
  [ -n "$pkgs" ] || return 1
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  # Sandbox user root: the _apt user cannot write into $BASE/debs (avoids a warning per file).
  (cd "$BASE/debs" && apt-get download -qq -o APT::Sandbox::User=root $pkgs) >&2
}

install() {
  if installed; then log "already installed in $R"; return 0; fi
  command -v apt-get >/dev/null || die "apt-get not found: the S3 test server needs Debian/Ubuntu packages"
  mkdir -p "$BASE/debs"
  # `apt-get update` is slow: only run it when the package lists are missing or stale (the
  # simulation finds nothing, or a download 404s).
  if ! download_debs; then
    log "refreshing package lists (apt-get update) ..."
    apt-get update -qq >&2 || die "apt-get update failed (root needed?)"
    download_debs || die "could not download $PACKAGES"
  fi
  # Unpack into a staging dir and rename at the end, so an interrupted install is never mistaken
  # for a complete one.
  rm -rf "$R.tmp"; mkdir -p "$R.tmp"
  local f
  for f in "$BASE"/debs/*.deb; do dpkg -x "$f" "$R.tmp"; done
  rm -rf "$R"; mv "$R.tmp" "$R"
  installed || die "install incomplete: no radosgw/ceph-mon/ceph-osd/ceph under $R"
  log "installed in $R"
}

# True if TCP port $1 on 127.0.0.1 accepts connections.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True if PID $1 is a daemon of *this* cluster (guards against stale PID files whose number has
# been reused by an unrelated process, and against another cluster's daemons).
ours() {
  local cmd
  [ -n "${1:-}" ] && cmd=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) && [[ "$cmd" == *" -c $CONF "* ]]
}
pid_of() { local p; p=$(cat "$BASE/pids/$1" 2>/dev/null) && ours "$p" && echo "$p"; }
running() { pid_of "$1" >/dev/null; }

# A signed S3 request (ListBuckets / HeadBucket) with the test credentials, via curl: ~10 ms,
# versus ~0.5 s for the Python `aws` CLI. Prints the HTTP status code.
s3_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-5}" \
    --aws-sigv4 "aws:amz:us-east-1:s3" -u "$ACCESS:$SECRET" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    ${3:+-I} "$ENDPOINT/${1:-}" 2>/dev/null || true
}
s3_ok() { [ "$(s3_status "" "${1:-5}")" = 200 ]; }

aws_test() {
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID="$ACCESS" AWS_SECRET_ACCESS_KEY="$SECRET" \
    AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url "$ENDPOINT" "$@"
}

# Pick the mon port at init time. An explicit MON_PORT must be free; the default 3300 moves to the
# next free port so that a second cluster (other base + RGW_PORT) can run next to the first.
pick_mon_port() {
  if ! port_open "$MON_PORT"; then return 0; fi
  [ -z "$MON_PORT_SET" ] || die "MON_PORT $MON_PORT is already in use"
  local p
  for p in $(seq 3301 3399); do
    if ! port_open "$p"; then MON_PORT=$p; log "port 3300 is taken, mon uses port $MON_PORT"; return 0; fi
  done
  die "no free mon port in 3300-3399 (set MON_PORT)"
}

init() {
  installed || install
  stop
  port_open "$RGW_PORT" && die "port $RGW_PORT is in use by another process (set RGW_PORT)"
  pick_mon_port
  rm -rf "$BASE/data" "$BASE/run" "$BASE/log" "$BASE/keyring" "$BASE/pids" "$CONF"
  mkdir -p "$BASE/data/mon.a" "$BASE/data/osd.0" "$BASE/data/rgw" "$BASE/run" "$BASE/log" "$BASE/pids"
  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CONF.tmp" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $BASE/keyring
run dir = $BASE/run
admin socket = $BASE/run/\$name.asok
log file = $BASE/log/\$name.log
crash dir = $BASE/log
plugin dir = $R/usr/lib/x86_64-linux-gnu/ceph
erasure code dir = $R/usr/lib/x86_64-linux-gnu/ceph/erasure-code
osd class dir = $R/usr/lib/x86_64-linux-gnu/rados-classes
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# a dev machine's disk is often more than 70% full; that is no reason for HEALTH_WARN here
mon data avail warn = 5
mon data avail crit = 2
osd crush chooseleaf type = 0
auth allow insecure global id reclaim = false
[mon]
mon data = $BASE/data/mon.\$id
[osd]
osd data = $BASE/data/osd.\$id
osd objectstore = $OBJSTORE
memstore device bytes = 4294967296
bluestore block path = $BASE/data/osd.\$id/block.file
bluestore block create = true
bluestore block size = $((BLOCK_GIB * 1024 * 1024 * 1024))
bluestore fsck on mount = false
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 939524096
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $BASE/data/rgw
rgw enable usage log = false
# reclaim the space of deleted objects within a minute (the default waits 2 hours)
rgw gc obj min wait = 60
rgw gc processor period = 60
rgw thread pool size = 64
EOF
  local kr=$BASE/keyring
  cx "$B/ceph-authtool" --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  cx "$B/ceph-authtool" "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  cx "$B/ceph-authtool" "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  cx "$B/ceph-authtool" "$kr" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  cx "$B/monmaptool" --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$BASE/data/monmap" >/dev/null
  cx "$B/ceph-mon" -c "$CONF.tmp" --mkfs -i a --monmap "$BASE/data/monmap" --keyring "$kr" >&2
  # ceph.conf appears only now: ensure treats "no ceph.conf" as "no cluster", so a half-made
  # cluster from an interrupted init is re-initialised rather than started.
  mv "$CONF.tmp" "$CONF"
  start_mon || exit 1
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  C osd new "$osd_uuid" >/dev/null
  cx "$B/ceph-osd" -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>&1 | tail -1 >&2
  start_osd || exit 1
  start_rgw || exit 1
  cx "$B/radosgw-admin" -c "$CONF" -n client.admin user create --uid=test --display-name=test \
    --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
  log "cluster initialised in $BASE (S3 $ENDPOINT, mon port $MON_PORT)"
}

# The start_* functions return non-zero on failure (instead of exiting) so that `ensure` can fall
# back to a fresh init.
start_mon() {
  "${CENV[@]}" "$B/ceph-mon" -c "$CONF" -i a -f >>"$BASE/log/mon.stdout" 2>&1 &
  echo $! >"$BASE/pids/mon"
  local i
  for i in $(seq 1 100); do
    C -s --connect-timeout 2 >/dev/null 2>&1 && return 0
    running mon || break
    sleep 0.2
  done
  log "mon did not come up"; tail -5 "$BASE/log/mon.stdout" >&2 || true; return 1
}
start_osd() {
  "${CENV[@]}" "$B/ceph-osd" -c "$CONF" -i 0 -f >>"$BASE/log/osd.stdout" 2>&1 &
  echo $! >"$BASE/pids/osd"
  local i
  for i in $(seq 1 150); do
    [[ "$(C osd stat 2>/dev/null)" == *" 1 up"* ]] && return 0
    running osd || break
    sleep 0.2
  done
  log "osd did not come up"; tail -5 "$BASE/log/osd.stdout" >&2 || true; return 1
}
start_rgw() {
  # The port is given on the command line too, so RGW_PORT wins over the one written at init.
  "${CENV[@]}" "$B/radosgw" -c "$CONF" -n client.rgw.a -f \
    --rgw-frontends "beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1" >>"$BASE/log/rgw.stdout" 2>&1 &
  echo $! >"$BASE/pids/rgw"
  local i
  for i in $(seq 1 300); do
    port_open "$RGW_PORT" && return 0
    running rgw || break
    sleep 0.2
  done
  log "rgw did not come up"; tail -20 "$BASE/log/client.rgw.a.log" >&2 || true; return 1
}
start_all() {
  stop
  port_open "$RGW_PORT" && { log "port $RGW_PORT is in use by another process (set RGW_PORT)"; return 1; }
  mkdir -p "$BASE/pids" "$BASE/log" "$BASE/run"
  start_mon && start_osd && start_rgw
}

stop() {
  local d p i
  for d in rgw osd mon; do
    if p=$(pid_of "$d"); then
      kill "$p" 2>/dev/null || true
      for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
    fi
    rm -f "$BASE/pids/$d"
  done
}

ensure() {
  command -v curl >/dev/null || die "curl is required"
  installed || install
  if [ ! -f "$CONF" ] || [ ! -d "$BASE/data/mon.a" ] || [ ! -d "$BASE/data/osd.0" ]; then
    log "no cluster in $BASE: initialising ..."
    init
  elif running mon && running osd && running rgw && s3_ok 3; then
    : # fast path: already up and answering signed requests
  else
    log "starting the existing cluster in $BASE ..."
    if ! start_all; then
      log "starting the existing cluster failed: re-initialising (old test data is lost)"
      init
    fi
  fi
  # RGW accepts TCP before it can serve requests; wait until a signed request works.
  local i
  for i in $(seq 1 150); do s3_ok 3 && break; sleep 0.2; done
  s3_ok 5 || die "S3 at $ENDPOINT does not answer signed requests (see $BASE/log)"
  if [ "$(s3_status "$BUCKET" 5 head)" != 200 ]; then
    local out
    if ! out=$(aws_test s3api create-bucket --bucket "$BUCKET" 2>&1) &&
      ! grep -qE 'BucketAlreadyOwnedByYou|BucketAlreadyExists' <<<"$out"; then
      die "create-bucket $BUCKET failed: $out"
    fi
    log "bucket $BUCKET ready"
  fi
}

env_lines() {
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$ACCESS"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$SECRET"
  printf 'export AWS_ENDPOINT_URL_S3=%q\n' "$ENDPOINT"
  printf 'export AWS_REGION=us-east-1\n'
  printf 'export AWS_DEFAULT_REGION=us-east-1\n' # the aws CLI (v1) reads this one, not AWS_REGION
  printf 'export WALSYNC_TEST_BUCKET=%q\n' "$BUCKET"
}

case "${1:-}" in
  install) install ;;
  init) init ;;
  start) installed || die "not installed (run: $0 install)"
         [ -f "$CONF" ] || die "no cluster in $BASE (run: $0 init)"
         start_all || exit 1 ;;
  stop) stop ;;
  ensure) ensure ;;
  env) env_lines ;;
  ceph) shift; C "$@" ;;
  *) echo "usage: $0 install|init|start|stop|ensure|env|ceph ARGS" >&2; exit 2 ;;
esac
