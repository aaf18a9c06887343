#!/bin/sh
# Installs a released walsync binary for this OS/arch, verified against the release's SHA256SUMS.
#
#   curl -fsSL https://github.com/OWNER/walsync/releases/latest/download/install.sh | sh
#   sh install.sh [VERSION]                   # e.g. 0.1.0; default: the latest release
#
# Environment:
#   WALSYNC_INSTALL_DIR       where to put `walsync` (default: ~/.local/bin)
#   WALSYNC_VERSION           the version to install (same as the argument)
#   WALSYNC_RELEASE_BASE_URL  the directory holding SHA256SUMS and the archives (default: the GitHub
#                             release of that version); http(s):// or file://
#   WALSYNC_REPO              GitHub owner/name of the releases (default below)
#   WALSYNC_TARGET            override the detected target, e.g. aarch64-unknown-linux-gnu
#
# Steps: download SHA256SUMS, find walsync-<version>-<target>.tar.gz in it, download that archive,
# check its SHA-256 (a mismatch stops here: nothing is installed), unpack, move `walsync` into place
# (atomically: a temporary file in the same directory, then rename), run `walsync --version`.
# Windows: download the .zip from the release page (this script needs a POSIX shell).
set -eu

# The release workflow writes the repository it was published from into this line.
REPO_SLUG=${WALSYNC_REPO:-walsync/walsync}
VERSION=${1:-${WALSYNC_VERSION:-}}
VERSION=${VERSION#v}
INSTALL_DIR=${WALSYNC_INSTALL_DIR:-${HOME:?HOME is not set}/.local/bin}

say() { echo "install.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case "$arch" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) die "no walsync release for CPU $arch (x86_64 and aarch64 only)" ;;
  esac
  case "$os" in
    Linux)
      if ldd --version 2>&1 | grep -qi musl; then
        die "walsync's Linux binaries need glibc (>= 2.27); this system uses musl"
      fi
      echo "$arch-unknown-linux-gnu" ;;
    Darwin) echo "$arch-apple-darwin" ;;
    *) die "no walsync release for $os from this script (Linux and macOS; Windows: the .zip on the release page)" ;;
  esac
}

# fetch URL FILE: download (http, https, file) with curl or wget; fails on HTTP errors.
fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    case "$1" in file://*) cp "${1#file://}" "$2" ;; *) wget -q -O "$2" "$1" ;; esac
  else
    die "curl or wget is needed"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "sha256sum or shasum is needed to verify the download"
  fi
}

TARGET=${WALSYNC_TARGET:-$(detect_target)}
if [ -n "${WALSYNC_RELEASE_BASE_URL:-}" ]; then
  BASE=${WALSYNC_RELEASE_BASE_URL%/}
elif [ -n "$VERSION" ]; then
  BASE="https://github.com/$REPO_SLUG/releases/download/v$VERSION"
else
  BASE="https://github.com/$REPO_SLUG/releases/latest/download"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/walsync-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

fetch "$BASE/SHA256SUMS" "$TMP/SHA256SUMS" || die "could not download $BASE/SHA256SUMS"
# Lines are "<sha256>  <file>" (sha256sum's format; a "*" before the name marks binary mode).
if [ -n "$VERSION" ]; then
  pattern="walsync-$VERSION-$TARGET.tar.gz"
else
  pattern="walsync-[0-9][^ ]*-$TARGET.tar.gz"
fi
line=$(sed 's/ \*/  /' "$TMP/SHA256SUMS" | grep -E "^[0-9a-f]{64}  $pattern\$" | head -n1 || true)
[ -n "$line" ] || die "$BASE/SHA256SUMS lists no $pattern (target $TARGET${VERSION:+, version $VERSION})"
expected=$(echo "$line" | cut -d' ' -f1)
asset=$(echo "$line" | sed 's/^[0-9a-f]*  //')
name=${asset%.tar.gz}

say "downloading $BASE/$asset"
fetch "$BASE/$asset" "$TMP/$asset" || die "could not download $BASE/$asset"
actual=$(sha256_of "$TMP/$asset")
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual; nothing was installed"
fi
say "checksum ok ($expected)"

mkdir -p "$TMP/unpacked"
tar -xzf "$TMP/$asset" -C "$TMP/unpacked" || die "could not unpack $asset"
src="$TMP/unpacked/$name/walsync"
[ -f "$src" ] || die "$asset has no $name/walsync"

mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
part="$INSTALL_DIR/.walsync.install.$$"
cp "$src" "$part" && chmod 755 "$part" && mv -f "$part" "$INSTALL_DIR/walsync" ||
  { rm -f "$part"; die "cannot write $INSTALL_DIR/walsync"; }
say "installed $INSTALL_DIR/walsync: $("$INSTALL_DIR/walsync" --version)"
case ":$PATH:" in
  *":$INSTALL_DIR:"*) ;;
  *) say "note: $INSTALL_DIR is not on PATH; add it, e.g. export PATH=\"$INSTALL_DIR:\$PATH\"" ;;
esac
