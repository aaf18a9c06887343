"""Every exception class, raised by a real walsync where one can be provoked, and secrets never in an
exception (str, repr, args) or a WalSync repr."""
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Store, s3_settings, writer

import walsync
from walsync import (
    ExecutableNotFoundError,
    InternalError,
    LeaseHeldError,
    NotFoundError,
    OutputExistsError,
    RuntimeFailureError,
    StoreError,
    UsageError,
    VerificationError,
    WalSync,
    WalSyncError,
    WalSyncInterruptedError,
)


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    texts = [str(error), repr(error), repr(error.args), getattr(error, "message", "")]
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"secret leaked into {text!r}"


def test_usage_error_for_a_malformed_url(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        WalSync("ftp://example.com/x").list()
    assert caught.value.exit_code == 2 and "ftp://example.com/x" in caught.value.message
    assert repr(caught.value).startswith("UsageError(2, ")


def test_usage_error_for_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UsageError) as caught:
        WalSync((tmp_path / "store").as_uri()).snapshot(junk)
    assert str(junk) in caught.value.message


def test_not_found_for_a_missing_backup_and_a_missing_database(store: Store, tmp_path: Path) -> None:
    ws = store.client()
    with pytest.raises(NotFoundError) as caught:
        ws.restore("nothing", tmp_path / "out.db")
    assert caught.value.exit_code == 3 and '"nothing"' in caught.value.message
    assert not (tmp_path / "out.db").exists()
    with pytest.raises(NotFoundError):
        ws.snapshot(tmp_path / "missing.db")


def test_output_exists(tmp_path: Path) -> None:
    ws = WalSync((tmp_path / "store").as_uri())
    db = tmp_path / "a.db"
    writer("fill", str(db), "5")
    ws.snapshot(db)
    out = tmp_path / "out.db"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError) as caught:
        ws.restore("a", out)
    assert caught.value.exit_code == 6 and str(out) in caught.value.message
    assert out.read_bytes() == b"precious"


def test_verification_error_for_a_truncated_snapshot(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    ws = WalSync(store_dir.as_uri())
    db = tmp_path / "a.db"
    writer("fill", str(db), "20")
    snap = ws.snapshot(db)
    obj = store_dir / str(snap.key)
    obj.write_bytes(obj.read_bytes()[:1000])
    with pytest.raises(VerificationError) as caught:
        ws.restore("a", tmp_path / "out.db")
    assert caught.value.exit_code == 4 and str(snap.key) in caught.value.message
    assert not (tmp_path / "out.db").exists()


def test_store_error_with_a_wrong_secret_never_shows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = s3_settings()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    wrong = "wrongSecretKey0123456789abcdefXYZ"
    ws = WalSync(f"s3://{s3['bucket']}/t-py-denied", endpoint=s3["endpoint"],
                 aws_access_key_id=s3["key"], aws_secret_access_key=wrong)
    assert wrong not in repr(ws) and s3["key"] not in repr(ws)
    with pytest.raises(StoreError) as caught:
        ws.list()
    assert caught.value.exit_code == 5
    assert_no_secret(caught.value, wrong, s3["secret"])

    missing_bucket = WalSync("s3://no-such-bucket-walsync-py/x", endpoint=s3["endpoint"],
                             aws_access_key_id=s3["key"], aws_secret_access_key=s3["secret"])
    with pytest.raises(StoreError) as caught:
        missing_bucket.list()
    assert "no-such-bucket-walsync-py" in caught.value.message
    assert_no_secret(caught.value, s3["secret"])


def test_lease_held_by_another_watch(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "leased.db"
    writer("fill", str(db), "5")
    ws = store.client()
    with ws.watch([db], sync_interval=0.5) as first:
        with pytest.raises(LeaseHeldError) as caught:
            ws.watch([db], sync_interval=0.5)
        assert caught.value.exit_code == 7 and "leased" in caught.value.message
        assert_no_secret(caught.value, store.secret or "unused-secret")
        assert first.running


def test_runtime_failure_when_no_database_can_be_watched(tmp_path: Path) -> None:
    rollback = tmp_path / "rollback.db"
    subprocess.run(["sqlite3", str(rollback), "CREATE TABLE t(x); INSERT INTO t VALUES (1);"], check=True)
    with pytest.raises(RuntimeFailureError) as caught:
        WalSync((tmp_path / "store").as_uri()).watch([rollback])
    assert caught.value.exit_code == 1
    assert "journal_mode=WAL" in caught.value.message or "no database could be watched" in caught.value.message


def test_a_crashed_watcher_is_raised_by_the_with_block(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    writer("fill", str(db), "5")
    ws = WalSync((tmp_path / "store").as_uri())
    with pytest.raises(WalSyncError) as caught:
        with ws.watch([db], sync_interval=0.2) as watcher:
            os.kill(watcher.pid, signal.SIGKILL)
            watcher._proc.wait(30)
    assert caught.value.exit_code == 128 + signal.SIGKILL and "SIGKILL" in caught.value.message
    watcher.stop()  # reported once: stopping again is a no-op


def test_the_with_block_stops_the_watcher_even_when_the_body_raises(tmp_path: Path) -> None:
    db = tmp_path / "body.db"
    writer("fill", str(db), "5")
    ws = WalSync((tmp_path / "store").as_uri())
    with pytest.raises(KeyError):
        with ws.watch([db], sync_interval=0.2) as watcher:
            raise KeyError("from the body")
    assert watcher.returncode == 0


def fake_walsync(tmp_path: Path, exit_code: int, stderr: str) -> Path:
    """A stand-in executable that prints `stderr` and exits with `exit_code` (for the codes a real
    walsync cannot be made to return on purpose: 70, 130, unknown ones)."""
    script = tmp_path / f"fake-walsync-{exit_code}"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.stderr.write({stderr!r})
        sys.exit({exit_code})
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize(
    "code,cls",
    [
        (1, RuntimeFailureError), (2, UsageError), (3, NotFoundError), (4, VerificationError), (5, StoreError),
        (6, OutputExistsError), (7, LeaseHeldError), (70, InternalError), (130, WalSyncInterruptedError),
        (42, WalSyncError),
    ],
)
def test_every_exit_code_maps_to_its_class_and_secrets_are_removed(tmp_path: Path, code: int, cls: type) -> None:
    secret = "fakeSecretValue0123456789"
    token = "fakeSessionToken987654321"
    exe = fake_walsync(
        tmp_path, code,
        "2026-11-30T01:00:00.000Z INFO starting\n"
        f"2026-11-30T01:00:00.001Z ERROR it failed with key {secret} and token {token}\n",
    )
    ws = WalSync("file:///nowhere", executable=exe, aws_secret_access_key=secret, aws_session_token=token)
    with pytest.raises(WalSyncError) as caught:
        ws.list()
    assert type(caught.value) is cls and caught.value.exit_code == code
    assert caught.value.message == "it failed with key [REDACTED] and token [REDACTED]"
    assert_no_secret(caught.value, secret, token)
    assert secret not in repr(ws)


def test_commander_usage_errors_keep_their_message(tmp_path: Path) -> None:
    exe = fake_walsync(tmp_path, 2, "error: unknown option '--nope'\n(add --help for more)\n")
    with pytest.raises(UsageError) as caught:
        WalSync("file:///x", executable=exe).list()
    assert caught.value.message == "unknown option '--nope'"


def test_executable_not_found_names_all_three_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALSYNC_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(walsync._executable, "BUNDLED_DIR", tmp_path / "no-bin")
    with pytest.raises(ExecutableNotFoundError) as caught:
        WalSync("file:///x")
    message = caught.value.message
    assert "WALSYNC_BIN" in message and "bundled" in message and "PATH" in message
    assert caught.value.exit_code == 127 and isinstance(caught.value, WalSyncError)

    monkeypatch.setenv("WALSYNC_BIN", str(tmp_path / "nope"))
    with pytest.raises(ExecutableNotFoundError, match="WALSYNC_BIN=.*nope"):
        WalSync("file:///x")

    on_path = fake_walsync(tmp_path, 0, "")
    on_path.rename(tmp_path / "walsync")
    monkeypatch.delenv("WALSYNC_BIN")
    assert WalSync("file:///x").executable == str(tmp_path / "walsync")


def test_naive_point_in_time_is_refused(tmp_path: Path) -> None:
    from datetime import datetime
    ws = WalSync((tmp_path / "store").as_uri())
    with pytest.raises(ValueError, match="naive"):
        ws.restore("a", tmp_path / "out.db", point_in_time=datetime(2026, 1, 1, 12, 0))


def test_credentials_reach_walsync_through_its_environment_never_its_command_line(tmp_path: Path) -> None:
    record = tmp_path / "seen.json"
    exe = tmp_path / "recording-walsync"
    exe.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION")
        json.dump({{"argv": sys.argv, "env": {{k: os.environ.get(k) for k in keys}}}}, open({str(record)!r}, "w"))
        print("[]")
        """))
    exe.chmod(0o755)
    ws = WalSync("s3://bucket/prefix", endpoint="http://127.0.0.1:9", executable=exe, aws_access_key_id="AKIAKEYID0001",
                 aws_secret_access_key="theSecretKey0001", aws_session_token="theToken0001", region="eu-west-3")
    assert ws.list() == []
    seen = json.loads(record.read_text())
    assert seen["env"] == {
        "AWS_ACCESS_KEY_ID": "AKIAKEYID0001", "AWS_SECRET_ACCESS_KEY": "theSecretKey0001",
        "AWS_SESSION_TOKEN": "theToken0001", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_REGION": "eu-west-3",
    }
    assert seen["argv"][1:] == ["list", "-b", "s3://bucket/prefix", "--json"]
    assert "theSecretKey0001" not in repr(ws) and "theToken0001" not in repr(ws)


def test_a_command_over_its_timeout_gets_sigterm_so_it_can_clean_up(tmp_path: Path) -> None:
    """walsync removes its temporary files on SIGTERM; SIGKILL would leave them beside the output."""
    marker = tmp_path / "got-sigterm"
    exe = tmp_path / "slow-walsync"
    exe.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import signal, sys, time
        def cleanup(signum, frame):
            open({str(marker)!r}, "w").write("cleaned up")
            sys.exit(130)
        signal.signal(signal.SIGTERM, cleanup)
        print("ready", file=sys.stderr, flush=True)
        time.sleep(60)
        """))
    exe.chmod(0o755)
    ws = WalSync("file:///x", executable=exe, timeout=1.0)
    with pytest.raises(RuntimeFailureError, match="did not finish within 1 s"):
        ws.list()
    assert marker.read_text() == "cleaned up"


def test_watch_options_reach_the_command_line(tmp_path: Path) -> None:
    record = tmp_path / "argv.json"
    exe = tmp_path / "watching-walsync"
    exe.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, signal, sys, time
        json.dump(sys.argv[1:], open({str(record)!r}, "w"))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print("2026-11-30T01:00:00.000Z INFO watching 2 database(s); sync every 500 ms", file=sys.stderr, flush=True)
        time.sleep(60)
        """))
    exe.chmod(0o755)
    ws = WalSync("file:///store", executable=exe)
    with ws.watch(["/srv/a.db", ("/srv/b.db", "bee")], sync_interval=0.5, snapshot_interval=60,
                  checkpoint_frames=500, lease_seconds=30) as watcher:
        assert watcher.running
    assert watcher.returncode == 0
    assert json.loads(record.read_text()) == [
        "watch", "-b", "file:///store", "--sync-interval", "0.5", "--snapshot-interval", "60",
        "--checkpoint-frames", "500", "--lease-seconds", "30", "--", "/srv/a.db", "/srv/b.db:bee",
    ]
    with pytest.raises(ValueError, match="positive number"):
        ws.watch(["/srv/a.db"], sync_interval=0)
