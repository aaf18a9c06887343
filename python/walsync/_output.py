"""Reading what the walsync command writes to stderr: ``<ISO time> LEVEL message`` log lines, and
commander's ``error: ...`` lines for bad usage."""
import logging
import re
from typing import List

_LOG = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARN|ERROR) (.*)$")
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}


def log_line(logger: logging.Logger, line: str) -> None:
    """Passes one stderr line of walsync to ``logger`` at its level (unknown lines as INFO)."""
    m = _LOG.match(line)
    if m:
        logger.log(_LEVELS[m.group(1)], "%s", m.group(2))
    elif line.strip():
        logger.info("%s", line)


def error_message(lines: List[str], exit_code: int) -> str:
    """The command's error message from its stderr lines: its ERROR lines (the last one is the
    reason it stopped), else commander's ``error:`` line, else the last line."""
    errors = []
    for line in lines:
        m = _LOG.match(line)
        if m and m.group(1) == "ERROR":
            errors.append(m.group(2))
        elif line.startswith("error: "):
            errors.append(line[len("error: "):])
    if errors:
        return "; ".join(errors[-3:])
    rest = [line for line in lines if line.strip() and not _LOG.match(line)]
    if rest:
        return rest[-1].strip()
    return f"walsync exited with code {exit_code}"
