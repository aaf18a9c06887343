"""walsync for Python: continuous, verified backup of SQLite databases to S3 or a directory.

    from walsync import WalSync
    ws = WalSync("s3://backups/prod")            # credentials from AWS_* or keyword arguments
    ws.snapshot("/srv/app.db")
    for db in ws.list():
        print(db.name, db.restorable_from, db.restorable_to)
    ws.restore("app", "/tmp/app.db")
    with ws.watch(["/srv/app.db"]):              # `walsync watch` until the block ends
        ...

Runs the walsync executable: ``WALSYNC_BIN``, else the one shipped in the wheel, else ``walsync``
on PATH.
"""
from ._client import WalSync, format_time
from ._errors import (
    ExecutableNotFoundError,
    InternalError,
    LeaseHeldError,
    NotFoundError,
    OutputExistsError,
    RuntimeFailureError,
    StoreError,
    UsageError,
    VerificationError,
    WalSyncError,
    WalSyncInterruptedError,
    error_for,
)
from ._executable import find_executable
from ._models import (
    Damage,
    DatabaseInfo,
    GenerationInfo,
    RestoreResult,
    SnapshotRef,
    SnapshotResult,
    TimeRange,
    VerifiedDatabase,
    VerifiedGeneration,
    VerifyReport,
    VerifyWarning,
    parse_time,
)
from ._watch import Watcher


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return "0+unknown"
    try:
        return version("walsync")
    except PackageNotFoundError:
        return "0+unknown"  # running from a source tree that is not installed


__version__ = _version()

__all__ = [
    "Damage",
    "DatabaseInfo",
    "ExecutableNotFoundError",
    "GenerationInfo",
    "InternalError",
    "LeaseHeldError",
    "NotFoundError",
    "OutputExistsError",
    "RestoreResult",
    "RuntimeFailureError",
    "SnapshotRef",
    "SnapshotResult",
    "StoreError",
    "TimeRange",
    "UsageError",
    "VerificationError",
    "VerifiedDatabase",
    "VerifiedGeneration",
    "VerifyReport",
    "VerifyWarning",
    "WalSync",
    "WalSyncError",
    "WalSyncInterruptedError",
    "Watcher",
    "error_for",
    "find_executable",
    "format_time",
    "parse_time",
    "__version__",
]
