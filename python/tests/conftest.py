"""Fixtures: a fresh store per test (file:// and the S3 server of WALSYNC_TEST_S3_ENDPOINT), databases
written by a separate application process, checkpointed copies to compare restores with.

WALSYNC_BIN must name the walsync to test; from a checkout it defaults to scripts/walsync.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator

import pytest

from walsync import WalSync

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent.parent
WRITER = TESTS / "app_writer.py"


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("WALSYNC_BIN") and (REPO / "scripts" / "walsync").is_file():
        os.environ["WALSYNC_BIN"] = str(REPO / "scripts" / "walsync")


@dataclass
class Store:
    """Where a test's backups go, and how to reach it."""

    kind: str  # "file" or "s3"
    url: str
    # Never in a repr: pytest prints fixtures of a failing test, and test.sh fails on a leaked secret.
    kwargs: Dict[str, str] = field(default_factory=dict, repr=False)
    secret: str = field(default="", repr=False)

    def client(self, **extra) -> WalSync:
        return WalSync(self.url, **{**self.kwargs, **extra})


def s3_settings() -> Dict[str, str]:
    endpoint = os.environ.get("WALSYNC_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("WALSYNC_TEST_S3_ENDPOINT is not set (scripts/test-python.sh sets it)")
    return {
        "endpoint": endpoint,
        "bucket": os.environ.get("WALSYNC_TEST_BUCKET", "walsync-test"),
        "key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture(scope="session")
def s3_session_prefix() -> Iterator[str]:
    """One prefix for the S3 stores of this run (each test has its own folder in it), removed at
    the end with one request batch."""
    prefix = f"t-py-{uuid.uuid4().hex[:12]}"
    yield prefix
    if os.environ.get("WALSYNC_TEST_S3_ENDPOINT"):
        remove_s3_prefix(s3_settings(), prefix)


@pytest.fixture(params=["file", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_session_prefix: str
) -> Iterator[Store]:
    """A fresh, empty store. For S3 the credentials are passed as keyword arguments only (the
    process environment has none), so the tests show that they reach walsync."""
    if request.param == "file":
        yield Store("file", (tmp_path / "store").as_uri())
        return
    s3 = s3_settings()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    yield Store(
        "s3",
        f"s3://{s3['bucket']}/{s3_session_prefix}/{uuid.uuid4().hex[:12]}",
        {"endpoint": s3["endpoint"], "aws_access_key_id": s3["key"], "aws_secret_access_key": s3["secret"]},
        s3["secret"],
    )


def remove_s3_prefix(s3: Dict[str, str], prefix: str) -> None:
    """Best effort: scripts/test.sh removes every t-* prefix at the end anyway."""
    if not shutil.which("aws"):
        return
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3["key"],
        "AWS_SECRET_ACCESS_KEY": s3["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    subprocess.run(
        ["aws", "--endpoint-url", s3["endpoint"], "s3", "rm", f"s3://{s3['bucket']}/{prefix}/", "--recursive",
         "--only-show-errors"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )


def writer(*args: str) -> str:
    """Runs the application writer (a separate process) to completion; returns its stdout."""
    proc = subprocess.run([sys.executable, str(WRITER), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"writer {args} failed: {proc.stderr}"
    return proc.stdout.strip()


def start_writer(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), *args], stdout=subprocess.PIPE, text=True)


def checkpointed_copy(db: Path, dest: Path) -> Path:
    """``dest``: the database as a full checkpoint would leave it, made from a copy of the file
    and its WAL (the source is not touched). The backup API is not used: it rewrites the
    header's change counter, so its copy is not byte-identical to a checkpointed file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, dest)
    wal = Path(f"{db}-wal")
    if wal.exists():
        shutil.copyfile(wal, f"{dest}-wal")
    conn = sqlite3.connect(dest, isolation_level=None)
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    conn.close()
    assert busy == 0, "checkpoint of the copy was busy"
    for suffix in ("-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    return dest


def rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        conn.close()
