"""A running ``walsync watch`` process, usable as a context manager."""
import atexit
import collections
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Deque, Iterable, List, Mapping, Optional, Sequence, Set

from ._errors import RuntimeFailureError, WalSyncError, error_for, redact
from ._output import error_message, log_line

# Watchers still running when the interpreter exits are stopped (SIGTERM, wait): a Python program's
# watcher must not outlive it unnoticed.
_running: Set["Watcher"] = set()


@atexit.register
def _stop_all() -> None:
    for watcher in list(_running):
        try:
            watcher.stop()
        except WalSyncError as e:
            logging.getLogger("walsync").error("watcher %s failed at exit: %s", watcher.pid, e)


# watch logs this once every database it could open is being replicated (src/commands/watch.ts).
_READY = re.compile(r" INFO watching \d+ database")


class Watcher:
    """A ``walsync watch`` child process. Create it with :meth:`WalSync.watch`.

    ``stop()`` sends SIGTERM (watch then ships what is committed and exits) and waits; leaving a
    ``with`` block does the same. If the watcher exits with a non-zero code, on its own or when
    stopped, the matching :class:`WalSyncError` subclass is raised by ``stop()``, ``wait()``,
    ``check()`` or the end of the ``with`` block: a crash is never swallowed.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        secrets: Iterable[Optional[str]],
        logger: logging.Logger,
    ) -> None:
        self._secrets = [s for s in secrets if s]
        self._logger = logger
        self._lines: Deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._stop_requested = False
        self._reported = False
        self._proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read_stderr, name="walsync-watch-stderr", daemon=True)
        self._reader.start()
        _running.add(self)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = redact(raw.decode("utf-8", "replace").rstrip("\r\n"), self._secrets)
            self._lines.append(line)
            log_line(self._logger, line)
            if _READY.search(line):
                self._ready.set()
        self._proc.stderr.close()

    # ------------------------------------------------------------------ state

    @property
    def pid(self) -> int:
        """The watcher's process id."""
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the watcher process runs."""
        return self._proc.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        """The exit code once it has exited (negative: killed by that signal), else None."""
        return self._proc.poll()

    @property
    def log(self) -> List[str]:
        """The last 200 lines the watcher logged (secrets removed)."""
        return list(self._lines)

    @property
    def errors(self) -> List[str]:
        """The ERROR messages logged so far, e.g. a database that could not be watched while the
        others are (watch reports it and goes on)."""
        return [error_message([line], 0) for line in self._lines if " ERROR " in line]

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Waits until every database is being watched (initial snapshot stored, lease held).

        Raises the watcher's error if it exits first, RuntimeFailureError (after stopping it) if it
        is not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None:
                self._reader.join(5)
                if self._ready.is_set():
                    break
                self._raise_if_failed()
                raise RuntimeFailureError(1, "walsync watch exited before it started watching")
            if time.monotonic() > deadline:
                self._terminate(10.0)
                raise RuntimeFailureError(
                    1, f"walsync watch did not start within {timeout:g} s; stopped it" + self._tail()
                )

    # ------------------------------------------------------------------ stopping

    def stop(self, timeout: float = 60.0) -> None:
        """Sends SIGTERM (watch ships what is committed, releases its leases and exits 0) and waits.

        Raises the matching WalSyncError if the watcher failed (now or earlier), and
        RuntimeFailureError if it had to be killed after ``timeout`` seconds.
        """
        if self._proc.poll() is None:
            self._stop_requested = True
            self._terminate(timeout)
        self._reader.join(5)
        self._raise_if_failed()

    def wait(self, timeout: Optional[float] = None) -> int:
        """Waits for the watcher to exit by itself; raises if it failed. Returns its exit code."""
        code = self._proc.wait(timeout)
        self._reader.join(5)
        self._raise_if_failed()
        return code

    def check(self) -> None:
        """Raises now if the watcher has exited with an error (does not wait)."""
        if self._proc.poll() is not None:
            self._reader.join(5)
            self._raise_if_failed()

    def _terminate(self, timeout: float) -> None:
        if sys.platform == "win32":
            self._proc.terminate()
        else:
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            self._reader.join(5)
            self._reported = True
            raise RuntimeFailureError(
                1, f"walsync watch did not stop within {timeout:g} s after SIGTERM; killed it" + self._tail()
            ) from None

    def _tail(self) -> str:
        return (": " + " / ".join(list(self._lines)[-3:])) if self._lines else ""

    def _raise_if_failed(self) -> None:
        code = self._proc.poll()
        if code is not None:
            _running.discard(self)
        if code is None or code == 0 or self._reported:
            return
        self._reported = True  # raised once; a second stop() is a no-op
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            if self._stop_requested and -code == signal.SIGTERM and not self._ready.is_set():
                # SIGTERM arrived before watch installed its handler: it had not started, so
                # there was nothing to ship.
                return
            raise WalSyncError(128 - code, f"walsync watch was killed by {name}" + self._tail())
        message = error_message(list(self._lines), code)
        raise error_for(code, message)

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # A watcher failure is raised even when the block itself raised (the block's exception
        # is then its __context__): a crash of the watcher is never swallowed.
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"<walsync.Watcher pid={self.pid} {state}>"
