"""WalSync: the Python API, a thin layer over the ``walsync`` command and its ``--json`` output."""
import json
import logging
import os
import subprocess
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._errors import RuntimeFailureError, UsageError, VerificationError, error_for, redact
from ._executable import find_executable
from ._models import DatabaseInfo, RestoreResult, SnapshotResult, VerifyReport
from ._output import error_message, log_line
from ._watch import Watcher

PathLike = Union[str, "os.PathLike[str]"]
#: A database to watch: a path, or (path, name) to store it under another name.
WatchTarget = Union[PathLike, Tuple[PathLike, str]]

logger = logging.getLogger("walsync")
logger.addHandler(logging.NullHandler())  # a library: the application decides where logs go


def format_time(value: Union[datetime, str]) -> str:
    """``point_in_time`` as walsync expects it: ISO 8601 in UTC with milliseconds.

    A naive datetime is refused (ValueError): walsync cannot know which zone it meant.
    A string is passed on as is (walsync checks it).
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"point_in_time must be a datetime or an ISO 8601 string, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "point_in_time is a naive datetime; give it a timezone, e.g. datetime(..., tzinfo=timezone.utc)"
        )
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class WalSync:
    """Backups of SQLite databases in one place (``s3://bucket[/prefix]`` or ``file:///dir``).

    Every method runs the walsync executable (see :func:`walsync.find_executable`). Credentials
    and the endpoint are passed to it through the environment, never on its command line::

        ws = WalSync("s3://backups/prod", endpoint="http://127.0.0.1:7480",
                     aws_access_key_id="...", aws_secret_access_key="...")
        ws.snapshot("/srv/app.db")
        ws.restore("app", "/tmp/app.db", point_in_time=datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))

    Arguments left out come from the process environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_S3, AWS_REGION). ``env`` adds variables for the command
    (e.g. WALSYNC_S3_TIMEOUT_MS). Failures raise a :class:`WalSyncError` subclass per exit code.
    """

    def __init__(
        self,
        url: str,
        endpoint: Optional[str] = None,
        *,
        aws_access_key_id: Optional[str] = None,
        aws_secret_access_key: Optional[str] = None,
        aws_session_token: Optional[str] = None,
        region: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        executable: Optional[PathLike] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self.url = str(url)
        self.endpoint = endpoint
        self.timeout = timeout
        self._extra_env = dict(env or {})
        self._credentials = {
            "AWS_ACCESS_KEY_ID": aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": aws_secret_access_key,
            "AWS_SESSION_TOKEN": aws_session_token,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL_S3": endpoint,
        }
        self.executable = os.fspath(executable) if executable is not None else find_executable()

    def __repr__(self) -> str:  # never the credentials
        endpoint = f", endpoint={self.endpoint!r}" if self.endpoint else ""
        return f"WalSync({self.url!r}{endpoint})"

    # ------------------------------------------------------------------ commands

    def snapshot(self, path: PathLike, name: Optional[str] = None) -> SnapshotResult:
        """Stores a consistent snapshot of the database at ``path`` as a new generation."""
        args = ["snapshot", "--json"] + (["--name", name] if name else []) + ["--", os.fspath(path)]
        return SnapshotResult.from_json(self._run_json(args))

    def list(self) -> List[DatabaseInfo]:
        """Every backed-up database with its generations and restorable time range."""
        data = self._run_json(["list", "--json"])
        if not isinstance(data, list):
            raise RuntimeFailureError(1, f"walsync list --json printed {type(data).__name__}, not a list")
        return [DatabaseInfo.from_json(item) for item in data]

    def restore(
        self,
        name: str,
        output: PathLike,
        point_in_time: Optional[Union[datetime, str]] = None,
        force: bool = False,
        *,
        if_db_not_exists: bool = False,
        if_replica_exists: bool = False,
    ) -> RestoreResult:
        """Restores ``name`` (latest state, or as of ``point_in_time``) to ``output``, verified.

        ``point_in_time`` is a timezone-aware datetime (or an ISO 8601 string). An existing output
        raises OutputExistsError unless ``force``; ``if_db_not_exists`` / ``if_replica_exists``
        turn "output exists" / "no backup" into a skipped result (``result.skipped``).
        """
        args = ["restore", "--json", "-o", os.fspath(output)]
        if point_in_time is not None:
            args += ["--point-in-time", format_time(point_in_time)]
        if force:
            args.append("--force")
        if if_db_not_exists:
            args.append("--if-db-not-exists")
        if if_replica_exists:
            args.append("--if-replica-exists")
        return RestoreResult.from_json(self._run_json(args + ["--", name]))

    def verify(self, names: Optional[Iterable[str]] = None, quick: bool = False, check: bool = True) -> VerifyReport:
        """Checks every object of the named databases (default: all) as a restore would.

        Damage raises VerificationError with the parsed report in ``e.report``; with
        ``check=False`` the report is returned instead (``report.ok`` is False).
        """
        if isinstance(names, str):
            names = [names]  # one name, not its characters
        args = ["verify", "--json"] + (["--quick"] if quick else []) + ["--", *(names or [])]
        code, stdout, lines = self._run(args)
        if code == 4 and stdout.strip():
            report = VerifyReport.from_json(self._parse(stdout, args))
            if not check:
                return report
            err = error_for(code, error_message(lines, code))
            assert isinstance(err, VerificationError)
            err.report = report
            raise err
        self._raise_for(code, lines)
        return VerifyReport.from_json(self._parse(stdout, args))

    def watch(
        self,
        paths: Union[WatchTarget, Sequence[WatchTarget]],
        sync_interval: float = 1,
        *,
        snapshot_interval: Optional[float] = None,
        checkpoint_frames: Optional[int] = None,
        lease_seconds: Optional[float] = None,
        retention: Optional[Union[str, float]] = None,
        fine_history: Optional[Union[str, float]] = None,
        compaction_levels: Optional[str] = None,
        wait_ready: bool = True,
        ready_timeout: float = 120.0,
    ) -> Watcher:
        """Starts ``walsync watch`` for ``paths`` (each a path or ``(path, name)``).

        Returns a :class:`Watcher`; use it as a context manager, or call ``stop()``. With
        ``wait_ready`` (the default) this returns once every database is being watched, and a
        failure to start (e.g. LeaseHeldError, UsageError) is raised here.

        ``retention`` and ``fine_history`` take seconds or a duration such as ``"7d"``
        (``retention="forever"`` keeps everything); ``compaction_levels`` a list such as
        ``"30s,5m,1h"`` or ``"off"`` (see the README's Retention and Compaction sections).
        """
        if isinstance(paths, (str, os.PathLike, tuple)):
            paths = [paths]  # type: ignore[list-item]
        targets = [_watch_arg(t) for t in paths]  # type: ignore[union-attr]
        args = ["watch", "--sync-interval", _number(sync_interval)]
        if snapshot_interval is not None:
            args += ["--snapshot-interval", _number(snapshot_interval)]
        if checkpoint_frames is not None:
            args += ["--checkpoint-frames", str(int(checkpoint_frames))]
        if lease_seconds is not None:
            args += ["--lease-seconds", _number(lease_seconds)]
        if retention is not None:
            args += ["--retention", retention if isinstance(retention, str) else _number(retention)]
        if fine_history is not None:
            args += ["--fine-history", fine_history if isinstance(fine_history, str) else _number(fine_history)]
        if compaction_levels is not None:
            args += ["--compaction-levels", compaction_levels]
        watcher = Watcher(self._argv(args + ["--", *targets]), self._env(), self._secrets(), logger)
        if wait_ready:
            watcher.wait_ready(ready_timeout)
        return watcher

    def version(self) -> str:
        """The executable's ``--version`` line, e.g. ``walsync 0.1.0 (x86_64-unknown-linux-gnu)``."""
        code, stdout, lines = self._run(["--version"], with_backup=False)
        self._raise_for(code, lines)
        return stdout.strip()

    # ------------------------------------------------------------------ running the command

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(self._extra_env)
        env.update({k: v for k, v in self._credentials.items() if v is not None})
        env["NO_COLOR"] = "1"
        return env

    def _secrets(self) -> List[Optional[str]]:
        env = self._env()
        return [env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN")]

    def _argv(self, args: List[str], with_backup: bool = True) -> List[str]:
        # -b goes right after the subcommand: commander takes options anywhere before `--`.
        if with_backup:
            args = [args[0], "-b", self.url] + args[1:]
        return [self.executable] + args

    def _run(self, args: List[str], with_backup: bool = True) -> Tuple[int, str, List[str]]:
        proc = subprocess.Popen(
            self._argv(args, with_backup),
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _terminate(proc)
            raise RuntimeFailureError(
                1, f"walsync {args[0]} did not finish within {self.timeout:g} s; stopped it (SIGTERM)"
            ) from None
        except BaseException:  # KeyboardInterrupt and the like: never leave walsync running
            _terminate(proc)
            raise
        secrets = self._secrets()
        lines = redact(stderr.decode("utf-8", "replace"), secrets).splitlines()
        for line in lines:
            log_line(logger, line)
        return proc.returncode, redact(stdout.decode("utf-8", "replace"), secrets), lines

    def _raise_for(self, code: int, lines: List[str]) -> None:
        if code != 0:
            raise error_for(code, error_message(lines, code))

    def _parse(self, stdout: str, args: List[str]) -> Any:
        try:
            return json.loads(stdout)
        except ValueError:
            raise RuntimeFailureError(1, f"walsync {args[0]} --json printed no JSON: {stdout[:200]!r}") from None

    def _run_json(self, args: List[str]) -> Any:
        code, stdout, lines = self._run(args)
        self._raise_for(code, lines)
        return self._parse(stdout, args)


def _terminate(proc: "subprocess.Popen[bytes]") -> None:
    """Stops a walsync command: SIGTERM first (it removes its temporary files and exits 130),
    SIGKILL only if it has not exited 30 s later."""
    proc.terminate()
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def _watch_arg(target: WatchTarget) -> str:
    """``path`` or ``path:name`` as ``walsync watch`` reads it. The CLI takes the text after the
    last ":" as a name when it has no "/", so a plain path with ":" in its file name would be split
    there: such a path needs an explicit name (its default name, with the ":", is not valid)."""
    if isinstance(target, tuple):
        path, name = target
        return f"{os.fspath(path)}:{name}"
    path = os.fspath(target)
    colon = path.rfind(":")
    if colon > 0 and "/" not in path[colon + 1 :]:
        raise UsageError(
            2, f'{path}: a file name with ":" needs an explicit name: watch([({path!r}, "NAME")])'
        )
    return path


def _number(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return f"{value:g}"
