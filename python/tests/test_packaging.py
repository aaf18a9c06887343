"""The package as users get it: the in-tree backend builds valid wheels and sdists offline, the version
comes from deno.json, and a platform wheel carries the executable and runs it."""
import base64
import csv
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, TESTS

import walsync

PROJECT = TESTS.parent
DENO_JSON = REPO / "deno.json"
pytestmark = pytest.mark.skipif(not DENO_JSON.is_file(), reason="needs the walsync repository")


def deno_version() -> str:
    """deno.json's version as the Python package spells it (PEP 440: 0.2.0-rc.1 -> 0.2.0rc1)."""
    sys.path.insert(0, str(PROJECT / "_build_backend"))
    try:
        from walsync_build import semver_to_pep440
    finally:
        sys.path.pop(0)
    return semver_to_pep440(json.loads(DENO_JSON.read_text())["version"])


def test_semver_versions_become_pep440() -> None:
    sys.path.insert(0, str(PROJECT / "_build_backend"))
    try:
        from walsync_build import semver_to_pep440
    finally:
        sys.path.pop(0)
    assert [semver_to_pep440(v) for v in ["0.1.0", "1.2.0-rc.1", "1.2.0-beta.2", "1.2.0-alpha.3"]] == [
        "0.1.0", "1.2.0rc1", "1.2.0b2", "1.2.0a3"]
    with pytest.raises(ValueError):
        semver_to_pep440("1.2.0-nightly")


def pip(*args: str, cwd: Path = PROJECT) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-index", "--disable-pip-version-check", "-q"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def check_record(wheel: Path) -> zipfile.ZipFile:
    """Every file in the wheel is in RECORD with its sha256 and size, and nothing else is."""
    archive = zipfile.ZipFile(wheel)
    record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
    assert sorted(r[0] for r in rows) == sorted(archive.namelist())
    for path, digest, size in rows:
        if path == record_name:
            assert digest == "" and size == ""
            continue
        data = archive.read(path)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={expected}" and int(size) == len(data), path
    return archive


def test_installed_package_is_the_one_under_test() -> None:
    """scripts/test-python.sh runs this suite against the package pip installed into a venv."""
    if os.environ.get("WALSYNC_TEST_INSTALLED") != "1":
        pytest.skip("not run from scripts/test-python.sh")
    assert Path(walsync.__file__).resolve().parent != PROJECT / "walsync"
    assert walsync.__version__ == deno_version()


def test_pure_wheel_and_sdist_build_offline(tmp_path: Path) -> None:
    pip("wheel", "--no-deps", "-w", str(tmp_path), ".")
    wheel = tmp_path / f"walsync-{deno_version()}-py3-none-any.whl"
    archive = check_record(wheel)
    names = archive.namelist()
    assert "walsync/py.typed" in names and "walsync/__init__.py" in names
    assert not any(n.startswith("walsync/bin/") or "tests/" in n for n in names)
    metadata = archive.read(f"walsync-{deno_version()}.dist-info/METADATA").decode()
    assert f"Version: {deno_version()}\n" in metadata and "Requires-Python: >=3.9\n" in metadata
    assert "Requires-Dist" not in metadata  # no runtime dependencies
    assert "Root-Is-Purelib: true" in archive.read(f"walsync-{deno_version()}.dist-info/WHEEL").decode()

    # The sdist builds a wheel where there is no deno.json: the version comes from its PKG-INFO.
    out = subprocess.run(
        [sys.executable, "-c", "import walsync_build, sys; print(walsync_build.build_sdist(sys.argv[1]))",
         str(tmp_path)],
        cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT / "_build_backend")},
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == f"walsync-{deno_version()}.tar.gz"
    unpacked = tmp_path / "unpacked"
    with tarfile.open(tmp_path / out) as tar:
        members = tar.getnames()
        tar.extractall(unpacked)
    base = f"walsync-{deno_version()}"
    assert {f"{base}/PKG-INFO", f"{base}/LICENSE", f"{base}/pyproject.toml", f"{base}/walsync/py.typed"} <= set(members)
    from_sdist = tmp_path / "from-sdist"
    pip("wheel", "--no-deps", "-w", str(from_sdist), ".", cwd=unpacked / base)
    assert [p.name for p in from_sdist.iterdir()] == [wheel.name]


def test_platform_wheel_carries_and_runs_the_executable(tmp_path: Path) -> None:
    """The release's platform wheel, with a stand-in for the compiled binary that runs this
    checkout's walsync: installed into a fresh venv, the `walsync` command and WalSync use it with
    neither WALSYNC_BIN nor a walsync on PATH."""
    target = os.environ.get("WALSYNC_BIN") or str(REPO / "scripts" / "walsync")
    binary = tmp_path / "walsync"
    binary.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
    binary.chmod(0o755)
    wheels = tmp_path / "wheels"
    pip("wheel", "--no-deps", "-w", str(wheels), ".", "--config-settings", f"binary={binary}",
        "--config-settings", "target=x86_64-unknown-linux-gnu")  # -C needs pip >= 23.1
    wheel = wheels / f"walsync-{deno_version()}-py3-none-manylinux_2_27_x86_64.whl"
    archive = check_record(wheel)
    info = archive.getinfo("walsync/bin/walsync")
    assert stat.S_IMODE(info.external_attr >> 16) == 0o755
    assert "walsync = walsync.__main__:main" in archive.read(
        f"walsync-{deno_version()}.dist-info/entry_points.txt").decode()

    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("installing needs an x86_64 Linux host")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", str(wheel)], check=True, timeout=300)
    clean = {k: v for k, v in os.environ.items() if k != "WALSYNC_BIN"}
    clean["PATH"] = f"{env_dir / 'bin'}:/usr/bin:/bin"
    version = subprocess.run([str(env_dir / "bin" / "walsync"), "--version"], env=clean,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"walsync {json.loads(DENO_JSON.read_text())['version']} (")
    found = subprocess.run(
        [str(py), "-c", "from walsync import WalSync; ws = WalSync('file:///x'); print(ws.executable); "
         "print(ws.version())"],
        env=clean, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()
    assert found[0].endswith("/site-packages/walsync/bin/walsync")
    assert found[1] == version.stdout.strip()


def test_sources_are_python_3_9() -> None:
    """Requires-Python >= 3.9: the package and its build backend parse with 3.9's grammar."""
    import ast

    files = sorted((PROJECT / "walsync").glob("*.py")) + [PROJECT / "_build_backend" / "walsync_build.py"]
    for path in files:
        ast.parse(path.read_text(), str(path), feature_version=(3, 9))
    # Annotations are evaluated at import on 3.9: no `X | Y` unions or builtin generics like list[str].
    for path in files:
        text = path.read_text()
        assert " | None" not in text and "list[" not in text and "dict[" not in text, path
