"""WalSync against a real walsync, on file:// and S3: snapshot, list, restore (byte-exact, point in
time), verify, watch under a live application writer."""
import filecmp
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Store, checkpointed_copy, rows, start_writer, writer

from walsync import (
    DatabaseInfo,
    GenerationInfo,
    RestoreResult,
    RuntimeFailureError,
    SnapshotResult,
    UsageError,
    VerificationError,
    VerifyReport,
    WalSync,
)


def wait_restorable_after(ws: WalSync, name: str, after: datetime, timeout: float = 30) -> datetime:
    """Waits until list() shows `name` restorable to a time later than `after`."""
    deadline = time.monotonic() + timeout
    while True:
        listed = {db.name: db for db in ws.list()}
        db = listed.get(name)
        if db and db.restorable_to and db.restorable_to > after:
            return db.restorable_to
        assert time.monotonic() < deadline, f"{name} not restorable past {after} within {timeout} s"
        time.sleep(0.2)


def test_snapshot_list_restore_byte_exact(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    writer("fill", str(db), "300")
    assert Path(f"{db}-wal").stat().st_size > 0, "the rows should still be in the WAL"
    ws = store.client()

    snap = ws.snapshot(db)
    assert isinstance(snap, SnapshotResult)
    assert (snap.name, snap.generation, snap.page_size) == ("app", 1, 4096)
    assert isinstance(snap.time, datetime) and snap.time.tzinfo is not None
    assert snap.key and snap.key.startswith("app/snapshots/00000001-")
    assert snap.size and snap.size > 300 * 32 and len(snap.sha256 or "") == 64

    named = ws.snapshot(db, name="copy")
    assert named.name == "copy"

    listed = ws.list()
    assert [d.name for d in listed] == ["app", "copy"]
    app = listed[0]
    assert isinstance(app, DatabaseInfo) and isinstance(app.generations[0], GenerationInfo)
    assert app.generation == 1 and app.latest_snapshot is not None
    assert app.latest_snapshot.key == snap.key and app.latest_snapshot.time == snap.time
    assert app.restorable_from == snap.time == app.restorable_to
    assert app.generations[0].snapshots == 1 and app.generations[0].segments == 0
    assert app.generations[0].page_sets == 0 and app.objects == 1 and app.bytes == snap.size
    assert app.newest_age_seconds is not None and 0 <= app.newest_age_seconds < 600
    assert "objects" not in app.extra and "pageSets" not in app.generations[0].extra

    out = tmp_path / "restored.db"
    result = ws.restore("app", out)
    assert isinstance(result, RestoreResult) and result.restored
    assert (result.name, result.output, result.generation, result.size) == ("app", str(out), 1, snap.database_size)
    assert result.time == snap.time and result.snapshot == snap.key and result.segments == 0
    expected = checkpointed_copy(db, tmp_path / "expected" / "app.db")
    assert filecmp.cmp(out, expected, shallow=False), "restore must equal the checkpointed source byte for byte"
    assert rows(out) == 300


def test_restore_skips_and_force(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    writer("fill", str(db), "10")
    ws = store.client()
    ws.snapshot(db)
    out = tmp_path / "out.db"
    out.write_bytes(b"keep me")
    skipped = ws.restore("app", out, if_db_not_exists=True)
    assert skipped.skipped == "output-exists" and not skipped.restored
    assert out.read_bytes() == b"keep me"
    none = ws.restore("nothing", tmp_path / "other.db", if_replica_exists=True)
    assert none.skipped == "no-backup" and not (tmp_path / "other.db").exists()
    forced = ws.restore("app", out, force=True)
    assert forced.restored and rows(out) == 10


def test_verify_reports_ok_and_damage(tmp_path: Path) -> None:
    """Full and quick verify of a good store; a flipped byte raises VerificationError with the report."""
    store_dir = tmp_path / "store"
    ws = WalSync(store_dir.as_uri())
    db = tmp_path / "app.db"
    writer("fill", str(db), "50")
    snap = ws.snapshot(db)

    report = ws.verify()
    assert isinstance(report, VerifyReport)
    assert report.ok is True and report.mode == "full" and report.url == store_dir.as_uri()
    (checked,) = report.databases
    assert checked.name == "app" and checked.ok and checked.objects == 1 and checked.damaged == []
    assert checked.generations[0].restorable[0].start == snap.time
    assert ws.verify(["app"], quick=True).mode == "quick"

    assert snap.key
    obj = store_dir / snap.key
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF  # stored compressed: the object is smaller than the database
    obj.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as caught:
        ws.verify()
    assert caught.value.exit_code == 4
    damaged = caught.value.report.databases[0].damaged
    assert [(d.key, d.kind, d.reason) for d in damaged] == [(snap.key, "snapshot", "corrupt")]
    unchecked = ws.verify(check=False)
    assert unchecked.ok is False and unchecked.databases[0].damaged[0].key == snap.key


def test_watch_context_manager_under_live_writer(store: Store, tmp_path: Path) -> None:
    """watch() as a context manager while an application writes; leaving the block stops it
    (SIGTERM ships what is committed), and the restore equals the checkpointed source."""
    db = tmp_path / "live.db"
    writer("fill", str(db), "20")
    ws = store.client()
    with ws.watch([db], sync_interval=0.2) as watcher:
        assert watcher.running
        app = start_writer("run", str(db), "2.5")
        last = int(app.communicate(timeout=60)[0])
        assert app.returncode == 0 and last > 20
    assert watcher.returncode == 0
    assert any("stopped:" in line for line in watcher.log)

    listed = ws.list()
    assert listed[0].name == "live" and listed[0].generations[0].segments
    out = tmp_path / "restored.db"
    ws.restore("live", out)
    assert rows(out) == last
    expected = checkpointed_copy(db, tmp_path / "expected" / "live.db")
    assert filecmp.cmp(out, expected, shallow=False), "restore must equal the checkpointed source byte for byte"


def test_point_in_time_with_datetime(store: Store, tmp_path: Path) -> None:
    """A datetime between two shipped batches restores exactly the state between them."""
    db = tmp_path / "pit.db"
    writer("fill", str(db), "30")
    ws = store.client()
    with ws.watch([(db, "pit")], sync_interval=0.2):
        started = datetime.now(timezone.utc)
        writer("fill", str(db), "40")
        wait_restorable_after(ws, "pit", started)
        middle = checkpointed_copy(db, tmp_path / "middle" / "pit.db")  # the writer is idle now
        moment = datetime.now(timezone.utc)
        time.sleep(0.05)
        writer("fill", str(db), "50")
        wait_restorable_after(ws, "pit", moment)

    out = tmp_path / "at-moment.db"
    result = ws.restore("pit", out, point_in_time=moment)
    assert result.time is not None and result.time <= moment
    assert rows(out) == 70
    assert filecmp.cmp(out, middle, shallow=False), "point-in-time restore must equal the state then, byte for byte"

    # Another timezone, same instant: the same state.
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    again = ws.restore("pit", tmp_path / "again.db", point_in_time=plus_two)
    assert again.time == result.time and rows(tmp_path / "again.db") == 70

    latest = ws.restore("pit", tmp_path / "latest.db")
    assert rows(tmp_path / "latest.db") == 120
    assert filecmp.cmp(tmp_path / "latest.db", checkpointed_copy(db, tmp_path / "end" / "pit.db"), shallow=False)
    assert latest.time is not None and latest.time > moment


def test_watch_paths_with_a_colon(tmp_path: Path) -> None:
    """`walsync watch` reads `path:name`; a path that contains ":" is not split there."""
    odd = tmp_path / "a:b"
    odd.mkdir()
    db = odd / "x:y.db"
    writer("fill", str(db), "5")
    ws = WalSync((tmp_path / "store").as_uri())
    with pytest.raises(UsageError, match="needs an explicit name"):
        ws.watch([db])
    with ws.watch([(db, "named")], sync_interval=0.2):
        pass
    assert [d.name for d in ws.list()] == ["named"]
    out = tmp_path / "out.db"
    ws.restore("named", out)
    assert rows(out) == 5


def test_watch_lifecycle_options_reach_walsync(tmp_path: Path) -> None:
    """retention, fine_history and compaction_levels become watch's flags: good values run, a bad one
    is refused by walsync itself (exit 2, UsageError naming the flag)."""
    db = tmp_path / "app.db"
    writer("fill", str(db), "5")
    ws = WalSync((tmp_path / "store").as_uri())
    with pytest.raises(UsageError, match="compaction levels"):
        ws.watch([db], compaction_levels="5m,30s")
    with pytest.raises(UsageError, match="--fine-history"):
        ws.watch([db], fine_history="soon")
    with pytest.raises(UsageError, match="--retention"):
        ws.watch([db], retention="sometimes")
    with ws.watch([db], sync_interval=0.2, retention="forever", fine_history=600, compaction_levels="off"):
        pass
    assert [d.name for d in ws.list()] == ["app"]


def test_a_watcher_left_running_is_stopped_when_python_exits(tmp_path: Path) -> None:
    """A program that forgets stop(): its watcher gets SIGTERM at interpreter exit (it ships and
    releases its lease) instead of running on, orphaned."""
    import os
    import subprocess
    import sys

    db = tmp_path / "left.db"
    writer("fill", str(db), "5")
    url = (tmp_path / "store").as_uri()
    program = (
        "import sys; from walsync import WalSync\n"
        f"w = WalSync({url!r}).watch([{str(db)!r}], sync_interval=0.2)\n"
        "print(w.pid, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.strip())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped) by the time the program exited
    with WalSync(url).watch([db], sync_interval=0.2):  # the lease was released
        pass


def test_a_database_that_cannot_be_watched_is_reported_while_the_others_are(tmp_path: Path) -> None:
    import subprocess

    good = tmp_path / "good.db"
    writer("fill", str(good), "5")
    rollback = tmp_path / "rollback.db"
    subprocess.run(["sqlite3", str(rollback), "CREATE TABLE t(x); INSERT INTO t VALUES (1);"], check=True)
    ws = WalSync((tmp_path / "store").as_uri())
    # The database walsync cannot replicate is retried while watch runs; at the end watch reports it
    # and exits 1 (RuntimeFailureError), after the good one was replicated all along.
    with pytest.raises(RuntimeFailureError, match="rollback.*not in WAL mode"):
        with ws.watch([good, rollback], sync_interval=0.2) as watcher:
            assert any("rollback" in e and "journal_mode=WAL" in e for e in watcher.errors), watcher.log
    assert [d.name for d in ws.list()] == ["good"]
