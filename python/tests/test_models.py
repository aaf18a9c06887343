"""Parsing of the CLI's --json output: typed fields, datetimes, and fields a newer walsync adds kept in
`extra` instead of breaking the parse."""
from datetime import datetime, timedelta, timezone

import pytest

from walsync import (
    DatabaseInfo,
    RestoreResult,
    SnapshotResult,
    VerifyReport,
    format_time,
    parse_time,
)


def test_times_are_timezone_aware_datetimes() -> None:
    t = parse_time("2026-11-24T10:29:59.123Z")
    assert t == datetime(2026, 11, 24, 10, 29, 59, 123000, tzinfo=timezone.utc)
    assert parse_time("2026-11-24T12:29:59.123+02:00") == t


def test_format_time_sends_utc_with_milliseconds() -> None:
    t = datetime(2026, 11, 24, 12, 30, 0, 123999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(t) == "2026-11-24T10:30:00.123Z"  # truncated, never rounded into the future
    assert format_time("2026-11-24T10:30:00Z") == "2026-11-24T10:30:00Z"
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 11, 24, 10, 30))
    with pytest.raises(TypeError):
        format_time(1234)  # type: ignore[arg-type]


def test_snapshot_result_maps_camel_case() -> None:
    r = SnapshotResult.from_json({
        "name": "a", "generation": 2, "key": "a/snapshots/00000002-x.db", "time": "2026-11-24T10:29:59.123Z",
        "size": 8192, "pageSize": 4096, "sha256": "ab" * 32,
    })
    assert (r.name, r.generation, r.page_size, r.size) == ("a", 2, 4096, 8192)
    assert r.time and r.time.year == 2026 and r.extra == {}


def test_restore_result_keeps_new_fields_in_extra() -> None:
    data = {
        "name": "a", "output": "/tmp/a.db", "generation": 1, "time": "2026-11-24T10:29:59.123Z",
        "snapshot": "a/snapshots/x.db", "segments": 3, "size": 8192,
        "damaged": [{"key": "a/wal/1.wal", "reason": "corrupt"}, "plain text"],
        "orphans": ["a/wal/dup.wal"], "leftovers": [], "objects": {"verified": 4},
    }
    r = RestoreResult.from_json(data)
    assert r.restored and r.segments == 3 and r.size == 8192
    assert r.damaged == [{"key": "a/wal/1.wal", "reason": "corrupt"}, "plain text"]
    assert r.extra == {"orphans": ["a/wal/dup.wal"], "leftovers": [], "objects": {"verified": 4}}
    skipped = RestoreResult.from_json({"name": "a", "output": "/tmp/a.db", "skipped": "no-backup"})
    assert not skipped.restored and skipped.generation is None and skipped.damaged == []


def test_a_field_of_an_unexpected_type_is_kept_not_fatal() -> None:
    r = RestoreResult.from_json({"name": "a", "time": 12345, "segments": "three", "skipped": None})
    assert r.time is None and r.segments is None and r.skipped is None
    assert r.extra == {"time": 12345, "segments": "three"}


def test_list_and_verify_nested_shapes() -> None:
    db = DatabaseInfo.from_json({
        "name": "t", "generation": 1,
        "latestSnapshot": {"key": "k", "generation": 1, "time": "2026-11-24T10:29:59.123Z", "size": 1, "new": 1},
        "restorableFrom": "2026-11-24T10:29:59.123Z", "restorableTo": None,
        "generations": [{"generation": 1, "snapshots": 1, "segments": 0, "bytes": 1,
                         "restorableFrom": None, "restorableTo": None, "orphans": 2}],
        "lease": {"holder": "h"},
    })
    assert db.latest_snapshot and db.latest_snapshot.extra == {"new": 1}
    assert db.restorable_to is None and db.generations[0].extra == {"orphans": 2}
    assert db.extra == {"lease": {"holder": "h"}}

    report = VerifyReport.from_json({
        "url": "file:///x", "mode": "full", "ok": False, "warnings": [],
        "databases": [{
            "name": "t", "ok": False, "objects": 3, "bytes": 10, "restorableFrom": None, "restorableTo": None,
            "generations": [{"generation": 1, "snapshots": 1, "segments": 2, "bytes": 10, "ok": False,
                             "restorable": [{"from": "2026-11-24T10:29:59.123Z", "to": "2026-11-24T10:30:00.000Z"}],
                             "unreachable": 1}],
            "damaged": [{"object": "t/wal/x (segment #1)", "key": None, "kind": "segment", "generation": 1,
                         "index": 1, "reason": "missing", "message": "gone", "detail": "new"}],
            "warnings": [{"key": "t/notes.txt", "message": "unknown object, not checked"}],
            "orphans": ["t/wal/dup"], "leftovers": [],
        }],
    })
    (vdb,) = report.databases
    assert report.ok is False and vdb.generations[0].restorable[0].end == parse_time("2026-11-24T10:30:00.000Z")
    assert vdb.damaged[0].key is None and vdb.damaged[0].index == 1 and vdb.damaged[0].extra == {"detail": "new"}
    assert vdb.warnings[0].key == "t/notes.txt"
    assert vdb.extra == {"orphans": ["t/wal/dup"], "leftovers": []}
