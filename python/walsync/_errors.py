"""Exceptions: one class per exit code of the `walsync` command (see its README, "Exit codes")."""
from typing import Any, Dict, Iterable, Optional, Type


class WalSyncError(Exception):
    """A walsync command failed. ``exit_code`` is the command's exit code, ``message`` its error.

    The message is the command's own one-line error (secrets removed). ``str(e)`` is the message;
    ``repr(e)`` is ``ClassName(exit_code, 'message')``.
    """

    #: The exit code this class stands for (None on the base class: any code).
    code: Optional[int] = None

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(exit_code, message)
        self.exit_code = exit_code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.exit_code!r}, {self.message!r})"


class RuntimeFailureError(WalSyncError):
    """Exit 1: a runtime failure (I/O error, database stayed locked, watch ended with errors)."""

    code = 1


class UsageError(WalSyncError):
    """Exit 2: bad usage (malformed URL or name, missing credentials, non-SQLite input)."""

    code = 2


class NotFoundError(WalSyncError):
    """Exit 3: no such database file, no backup of that name, time before the first backup."""

    code = 3


class VerificationError(WalSyncError):
    """Exit 4: a checksum mismatch, a gap, a damaged or missing object.

    From :meth:`WalSync.verify`, ``report`` holds the parsed report.
    """

    code = 4
    report: Any = None


class StoreError(WalSyncError):
    """Exit 5: the store could not be used (access denied, unknown bucket, unreachable endpoint)."""

    code = 5


class OutputExistsError(WalSyncError):
    """Exit 6: the restore output exists (pass ``force=True``)."""

    code = 6


class LeaseHeldError(WalSyncError):
    """Exit 7: another ``watch`` holds the lease of that database name."""

    code = 7


class InternalError(WalSyncError):
    """Exit 70: a bug in walsync (an unexpected exception); please report it."""

    code = 70


class WalSyncInterruptedError(WalSyncError):
    """Exit 130: the command was interrupted (SIGINT/SIGTERM) before its work completed."""

    code = 130


class ExecutableNotFoundError(WalSyncError):
    """No walsync executable: WALSYNC_BIN, the one in the wheel and PATH were all tried.

    ``exit_code`` is 127 (the shell's "command not found"); no command ran.
    """

    code = 127


_BY_CODE: Dict[int, Type[WalSyncError]] = {
    cls.code: cls  # type: ignore[misc]
    for cls in (
        RuntimeFailureError,
        UsageError,
        NotFoundError,
        VerificationError,
        StoreError,
        OutputExistsError,
        LeaseHeldError,
        InternalError,
        WalSyncInterruptedError,
    )
}


def error_for(exit_code: int, message: str) -> WalSyncError:
    """The exception for ``exit_code``: its subclass, or WalSyncError for an unknown code."""
    return _BY_CODE.get(exit_code, WalSyncError)(exit_code, message)


def redact(text: str, secrets: Iterable[Optional[str]]) -> str:
    """``text`` with each secret (4+ characters) replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    return text
