"""A PEP 517 build backend for the walsync Python package, standard library only.

Why in-tree: the package must install with `pip install ./python` on machines that reach no
package index, and setuptools cannot build a wheel without the `wheel` package. This backend has
no requirements (`requires = []`): it writes wheels (zipfile, RECORD hashes with hashlib) and
sdists (tarfile) itself.

Version: from ../deno.json (the one place the version lives) when building from the repository;
from PKG-INFO when building from an sdist.

Platform wheels (release builds) carry the compiled `walsync` executable inside the package
(`walsync/bin/walsync[.exe]`) and a `walsync` console script that runs it. Select one with
config settings or environment variables:

    pip wheel ./python --config-settings binary=$PWD/dist/walsync --config-settings target=x86_64-unknown-linux-gnu
    WALSYNC_WHEEL_BINARY=dist/walsync WALSYNC_WHEEL_TARGET=x86_64-unknown-linux-gnu pip wheel ./python

`target` is a Deno target triple (mapped to the wheel's platform tag below) or `platform=` gives
the tag directly. Without a binary the wheel is pure (`py3-none-any`) and finds the executable
through WALSYNC_BIN or PATH.
"""
import base64
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import time
import zipfile
from pathlib import Path

NAME = "walsync"
ROOT = Path(__file__).resolve().parent.parent  # python/
PACKAGE = ROOT / NAME
SUMMARY = (
    "Python API for walsync: continuous, verified backup of SQLite databases to S3 or a directory"
)
REQUIRES_PYTHON = ">=3.9"

# Deno target triple -> wheel platform tag (the same tags as Deno's own wheels: Deno's Linux
# binaries need glibc >= 2.27).
PLATFORM_TAGS = {
    "x86_64-unknown-linux-gnu": "manylinux_2_27_x86_64",
    "aarch64-unknown-linux-gnu": "manylinux_2_27_aarch64",
    "x86_64-apple-darwin": "macosx_10_15_x86_64",
    "aarch64-apple-darwin": "macosx_11_0_arm64",
    "x86_64-pc-windows-msvc": "win_amd64",
}

# Files of the source tree that go into an sdist (besides PKG-INFO and LICENSE).
SDIST_FILES = ["pyproject.toml", "README.md", "_build_backend/walsync_build.py"]
SDIST_DIRS = [NAME, "tests"]


# ---------------------------------------------------------------- version and metadata


def semver_to_pep440(version: str) -> str:
    """0.1.0 -> 0.1.0; 1.2.0-rc.1 -> 1.2.0rc1; 1.2.0-beta.2 -> 1.2.0b2; 1.2.0-alpha.3 -> 1.2.0a3."""
    m = re.fullmatch(r"(\d+\.\d+\.\d+)(?:-(alpha|beta|rc)\.?(\d+))?", version)
    if not m:
        raise ValueError(f"deno.json version {version!r} has no PEP 440 equivalent")
    base, pre, num = m.groups()
    return base + ({"alpha": "a", "beta": "b", "rc": "rc"}[pre] + num if pre else "")


def project_version() -> str:
    """The package version: PKG-INFO in an sdist, else the repository's deno.json."""
    pkg_info = ROOT / "PKG-INFO"
    if pkg_info.is_file():
        for line in pkg_info.read_text(encoding="utf-8").splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
        raise RuntimeError(f"{pkg_info} has no Version line")
    deno_json = ROOT.parent / "deno.json"
    if not deno_json.is_file():
        raise RuntimeError(
            f"cannot find the version: no PKG-INFO in {ROOT} and no {deno_json} "
            "(build from the walsync repository or from an sdist)"
        )
    config = json.loads(deno_json.read_text(encoding="utf-8"))
    if config.get("name") != "@walsync/cli" or "version" not in config:
        raise RuntimeError(f"{deno_json} is not walsync's deno.json (no @walsync/cli version)")
    return semver_to_pep440(config["version"])


def license_text() -> bytes:
    for candidate in (ROOT / "LICENSE", ROOT.parent / "LICENSE"):
        if candidate.is_file():
            return candidate.read_bytes()
    raise RuntimeError(f"no LICENSE in {ROOT} or {ROOT.parent}")


def metadata(version: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headers = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        f"Summary: {SUMMARY}",
        "License: Apache-2.0",
        f"Requires-Python: {REQUIRES_PYTHON}",
        "Classifier: License :: OSI Approved :: Apache Software License",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Topic :: Database",
        "Classifier: Topic :: System :: Archiving :: Backup",
        "Classifier: Typing :: Typed",
        "Description-Content-Type: text/markdown",
    ]
    return "\n".join(headers) + "\n\n" + readme


# ---------------------------------------------------------------- wheel


def _setting(config_settings, key: str, env: str):
    value = (config_settings or {}).get(key)
    return value if value else os.environ.get(env) or None


def _binary_choice(config_settings):
    """(path of the executable, platform tag) for a platform wheel, or (None, None)."""
    binary = _setting(config_settings, "binary", "WALSYNC_WHEEL_BINARY")
    target = _setting(config_settings, "target", "WALSYNC_WHEEL_TARGET")
    platform = _setting(config_settings, "platform", "WALSYNC_WHEEL_PLATFORM")
    if not binary:
        if target or platform:
            raise RuntimeError("a wheel target/platform was given without a binary (binary=PATH)")
        return None, None
    path = Path(binary).resolve()
    if not path.is_file():
        raise RuntimeError(f"walsync binary {path} does not exist (give an absolute path: pip runs this in {ROOT})")
    if not platform:
        if target not in PLATFORM_TAGS:
            raise RuntimeError(
                f"unknown or missing target {target!r} for the binary wheel; one of: "
                + ", ".join(PLATFORM_TAGS)
            )
        platform = PLATFORM_TAGS[target]
    return path, platform


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _zip_time():
    # Reproducible archives: SOURCE_DATE_EPOCH if set, else 1980-01-01 (zip's epoch).
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    return time.gmtime(max(epoch, 315532800))[:6]


class _WheelWriter:
    def __init__(self, path: Path):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records = []

    def add(self, arcname: str, data: bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(arcname, date_time=_zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
        self.zip.writestr(info, data)
        self.records.append(f"{arcname},{_record_hash(data)},{len(data)}")

    def close(self, record_name: str) -> None:
        self.records.append(f"{record_name},,")
        info = zipfile.ZipInfo(record_name, date_time=_zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o644 | stat.S_IFREG) << 16
        self.zip.writestr(info, "\n".join(self.records) + "\n")
        self.zip.close()


def _package_files():
    """(relative path, data) of every file of the Python package, sorted."""
    files = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_dir() or "__pycache__" in rel or rel.endswith((".pyc", ".pyo")):
            continue
        if rel.startswith(f"{NAME}/bin/"):
            continue  # a binary is only ever added explicitly (platform wheels)
        files.append((rel, path.read_bytes()))
    return files


def _dist_info_files(version: str, tag: str, pure: bool, console_script: bool):
    dist_info = f"{NAME}-{version}.dist-info"
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: walsync_build\n"
        f"Root-Is-Purelib: {'true' if pure else 'false'}\n"
        f"Tag: {tag}\n"
    )
    files = [
        (f"{dist_info}/METADATA", metadata(version).encode("utf-8")),
        (f"{dist_info}/WHEEL", wheel.encode("utf-8")),
        (f"{dist_info}/LICENSE", license_text()),
        (f"{dist_info}/top_level.txt", f"{NAME}\n".encode("utf-8")),
    ]
    if console_script:
        files.append(
            (f"{dist_info}/entry_points.txt", b"[console_scripts]\nwalsync = walsync.__main__:main\n")
        )
    return dist_info, files


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 517: writes walsync-<version>-py3-none-<platform>.whl; returns its file name."""
    version = project_version()
    binary, platform = _binary_choice(config_settings)
    tag = f"py3-none-{platform or 'any'}"
    dist_info, info_files = _dist_info_files(version, tag, binary is None, binary is not None)
    name = f"{NAME}-{version}-{tag}.whl"
    out = Path(wheel_directory) / name
    tmp = out.with_suffix(".whl.tmp")
    writer = _WheelWriter(tmp)
    try:
        for rel, data in _package_files():
            writer.add(rel, data)
        if binary is not None:
            exe = "walsync.exe" if platform.startswith("win") else "walsync"
            writer.add(f"{NAME}/bin/{exe}", binary.read_bytes(), executable=True)
        for rel, data in info_files:
            writer.add(rel, data)
        writer.close(f"{dist_info}/RECORD")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return name


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel with a .pth file that puts python/ on sys.path."""
    version = project_version()
    tag = "py3-none-any"
    dist_info, info_files = _dist_info_files(version, tag, True, False)
    name = f"{NAME}-{version}-{tag}.whl"
    writer = _WheelWriter(Path(wheel_directory) / name)
    writer.add(f"_{NAME}_editable.pth", (str(ROOT) + "\n").encode("utf-8"))
    for rel, data in info_files:
        writer.add(rel, data)
    writer.close(f"{dist_info}/RECORD")
    return name


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    """PEP 517: the .dist-info directory without building the wheel."""
    version = project_version()
    binary, platform = _binary_choice(config_settings)
    tag = f"py3-none-{platform or 'any'}"
    dist_info, info_files = _dist_info_files(version, tag, binary is None, binary is not None)
    for rel, data in info_files:
        target = Path(metadata_directory) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


# ---------------------------------------------------------------- sdist


def build_sdist(sdist_directory, config_settings=None):
    """PEP 517: writes walsync-<version>.tar.gz (sources, tests, LICENSE, PKG-INFO)."""
    version = project_version()
    base = f"{NAME}-{version}"
    name = f"{base}.tar.gz"
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    members = [(rel, (ROOT / rel).read_bytes()) for rel in SDIST_FILES]
    for directory in SDIST_DIRS:
        for path in sorted((ROOT / directory).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in rel and not rel.startswith(f"{NAME}/bin/"):
                members.append((rel, path.read_bytes()))
    members.append(("LICENSE", license_text()))
    members.append(("PKG-INFO", metadata(version).encode("utf-8")))
    out = Path(sdist_directory) / name
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in members:
            info = tarfile.TarInfo(f"{base}/{rel}")
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return name
