"""Typed results, built from the JSON that ``walsync ... --json`` prints.

Parsing is defensive: known fields are typed (times become timezone-aware ``datetime``s, camelCase
keys become snake_case attributes), a known field that is missing becomes None (or an empty list),
and fields this version does not know are kept as they are in ``extra``, so a newer walsync never
breaks an older Python package.
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union

T = TypeVar("T")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as printed by walsync (``2026-11-24T10:29:59.123Z``), timezone-aware."""
    if not isinstance(text, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(text).__name__}")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {text}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


def _list_of(convert: Callable[[Any], T]) -> Callable[[Any], List[T]]:
    def parse(value: Any) -> List[T]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {value!r}")
        return [convert(item) for item in value]

    return parse


class _Fields:
    """Takes known keys out of a JSON object; what is left over (or fails to parse) is ``extra``."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        self._rest: Dict[str, Any] = dict(data)
        self._bad: Dict[str, Any] = {}

    def get(self, key: str, convert: Callable[[Any], T]) -> Optional[T]:
        if key not in self._rest:
            return None
        value = self._rest.pop(key)
        if value is None:
            return None
        try:
            return convert(value)
        except (TypeError, ValueError):
            self._bad[key] = value  # a shape this version does not know: kept, not fatal
            return None

    def list(self, key: str, convert: Callable[[Any], T]) -> List[T]:
        return self.get(key, _list_of(convert)) or []

    @property
    def extra(self) -> Dict[str, Any]:
        return {**self._rest, **self._bad}


@dataclass
class SnapshotResult:
    """``walsync snapshot --json``: the snapshot stored as the first object of a new generation."""

    name: Optional[str] = None
    generation: Optional[int] = None
    key: Optional[str] = None
    time: Optional[datetime] = None
    #: Size of the stored object (compressed and/or encrypted), as ``list`` shows it.
    size: Optional[int] = None
    page_size: Optional[int] = None
    #: SHA-256 of the stored object.
    sha256: Optional[str] = None
    #: Size of the database image itself (what a restore writes).
    database_size: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "SnapshotResult":
        f = _Fields(data)
        return cls(
            name=f.get("name", _str),
            generation=f.get("generation", _int),
            key=f.get("key", _str),
            time=f.get("time", parse_time),
            size=f.get("size", _int),
            page_size=f.get("pageSize", _int),
            sha256=f.get("sha256", _str),
            database_size=f.get("databaseSize", _int),
            extra=f.extra,
        )


@dataclass
class SnapshotRef:
    """The latest snapshot of a database in ``list``."""

    key: Optional[str] = None
    generation: Optional[int] = None
    time: Optional[datetime] = None
    size: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "SnapshotRef":
        f = _Fields(data)
        return cls(
            key=f.get("key", _str),
            generation=f.get("generation", _int),
            time=f.get("time", parse_time),
            size=f.get("size", _int),
            extra=f.extra,
        )


@dataclass
class GenerationInfo:
    """One generation of a database in ``list``."""

    generation: Optional[int] = None
    snapshots: Optional[int] = None
    segments: Optional[int] = None
    #: Compacted page sets stored for this generation (see the README's Compaction section).
    page_sets: Optional[int] = None
    bytes: Optional[int] = None
    restorable_from: Optional[datetime] = None
    restorable_to: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "GenerationInfo":
        f = _Fields(data)
        return cls(
            generation=f.get("generation", _int),
            snapshots=f.get("snapshots", _int),
            segments=f.get("segments", _int),
            page_sets=f.get("pageSets", _int),
            bytes=f.get("bytes", _int),
            restorable_from=f.get("restorableFrom", parse_time),
            restorable_to=f.get("restorableTo", parse_time),
            extra=f.extra,
        )


@dataclass
class DatabaseInfo:
    """One backed-up database in ``list``: its generations and restorable time range."""

    name: Optional[str] = None
    generation: Optional[int] = None
    latest_snapshot: Optional[SnapshotRef] = None
    restorable_from: Optional[datetime] = None
    restorable_to: Optional[datetime] = None
    generations: List[GenerationInfo] = field(default_factory=list)
    #: Objects and bytes stored for the database (what the storage bill counts).
    objects: Optional[int] = None
    bytes: Optional[int] = None
    #: Seconds since its newest object was stored: a stale backup shows here.
    newest_age_seconds: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "DatabaseInfo":
        f = _Fields(data)
        return cls(
            name=f.get("name", _str),
            generation=f.get("generation", _int),
            latest_snapshot=f.get("latestSnapshot", SnapshotRef.from_json),
            restorable_from=f.get("restorableFrom", parse_time),
            restorable_to=f.get("restorableTo", parse_time),
            generations=f.list("generations", GenerationInfo.from_json),
            objects=f.get("objects", _int),
            bytes=f.get("bytes", _int),
            newest_age_seconds=f.get("newestAgeSeconds", _int),
            extra=f.extra,
        )


@dataclass
class RestoreResult:
    """``walsync restore --json``. ``skipped`` is ``"output-exists"`` or ``"no-backup"`` when the
    restore did nothing (``if_db_not_exists`` / ``if_replica_exists``), else None."""

    name: Optional[str] = None
    output: Optional[str] = None
    skipped: Optional[str] = None
    generation: Optional[int] = None
    time: Optional[datetime] = None
    snapshot: Optional[str] = None
    segments: Optional[int] = None
    size: Optional[int] = None
    #: damaged objects that made the restore use another snapshot or generation (strings, or
    #: objects in a newer walsync)
    damaged: List[Union[str, Dict[str, Any]]] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def restored(self) -> bool:
        """True if a database was written (not skipped)."""
        return self.skipped is None

    @classmethod
    def from_json(cls, data: Any) -> "RestoreResult":
        f = _Fields(data)
        return cls(
            name=f.get("name", _str),
            output=f.get("output", _str),
            skipped=f.get("skipped", _str),
            generation=f.get("generation", _int),
            time=f.get("time", parse_time),
            snapshot=f.get("snapshot", _str),
            segments=f.get("segments", _int),
            size=f.get("size", _int),
            damaged=f.list("damaged", lambda v: v),
            extra=f.extra,
        )


@dataclass
class TimeRange:
    """An inclusive time range (``from``/``to`` in the JSON)."""

    start: Optional[datetime] = None
    end: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "TimeRange":
        f = _Fields(data)
        return cls(start=f.get("from", parse_time), end=f.get("to", parse_time), extra=f.extra)


@dataclass
class Damage:
    """One damaged or missing object found by ``verify``."""

    object: Optional[str] = None
    key: Optional[str] = None
    kind: Optional[str] = None
    generation: Optional[int] = None
    index: Optional[int] = None
    reason: Optional[str] = None
    message: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "Damage":
        f = _Fields(data)
        return cls(
            object=f.get("object", _str),
            key=f.get("key", _str),
            kind=f.get("kind", _str),
            generation=f.get("generation", _int),
            index=f.get("index", _int),
            reason=f.get("reason", _str),
            message=f.get("message", _str),
            extra=f.extra,
        )


@dataclass
class VerifyWarning:
    """Something ``verify`` did not check (e.g. an unknown key); does not change the outcome."""

    key: Optional[str] = None
    message: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "VerifyWarning":
        f = _Fields(data)
        return cls(key=f.get("key", _str), message=f.get("message", _str), extra=f.extra)


@dataclass
class VerifiedGeneration:
    """One generation in a verify report."""

    generation: Optional[int] = None
    snapshots: Optional[int] = None
    segments: Optional[int] = None
    bytes: Optional[int] = None
    ok: Optional[bool] = None
    restorable: List[TimeRange] = field(default_factory=list)
    unreachable: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "VerifiedGeneration":
        f = _Fields(data)
        return cls(
            generation=f.get("generation", _int),
            snapshots=f.get("snapshots", _int),
            segments=f.get("segments", _int),
            bytes=f.get("bytes", _int),
            ok=f.get("ok", _bool),
            restorable=f.list("restorable", TimeRange.from_json),
            unreachable=f.get("unreachable", _int),
            extra=f.extra,
        )


@dataclass
class VerifiedDatabase:
    """One database in a verify report."""

    name: Optional[str] = None
    ok: Optional[bool] = None
    objects: Optional[int] = None
    bytes: Optional[int] = None
    restorable_from: Optional[datetime] = None
    restorable_to: Optional[datetime] = None
    generations: List[VerifiedGeneration] = field(default_factory=list)
    damaged: List[Damage] = field(default_factory=list)
    warnings: List[VerifyWarning] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "VerifiedDatabase":
        f = _Fields(data)
        return cls(
            name=f.get("name", _str),
            ok=f.get("ok", _bool),
            objects=f.get("objects", _int),
            bytes=f.get("bytes", _int),
            restorable_from=f.get("restorableFrom", parse_time),
            restorable_to=f.get("restorableTo", parse_time),
            generations=f.list("generations", VerifiedGeneration.from_json),
            damaged=f.list("damaged", Damage.from_json),
            warnings=f.list("warnings", VerifyWarning.from_json),
            extra=f.extra,
        )


@dataclass
class VerifyReport:
    """``walsync verify --json``. ``ok`` is True exactly when nothing is damaged or missing."""

    url: Optional[str] = None
    mode: Optional[str] = None
    ok: Optional[bool] = None
    databases: List[VerifiedDatabase] = field(default_factory=list)
    warnings: List[VerifyWarning] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "VerifyReport":
        f = _Fields(data)
        return cls(
            url=f.get("url", _str),
            mode=f.get("mode", _str),
            ok=f.get("ok", _bool),
            databases=f.list("databases", VerifiedDatabase.from_json),
            warnings=f.list("warnings", VerifyWarning.from_json),
            extra=f.extra,
        )
