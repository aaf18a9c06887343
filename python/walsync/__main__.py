"""``python -m walsync ARGS`` (and the ``walsync`` console script of platform wheels): runs the
walsync executable with ARGS and exits with its exit code."""
import os
import subprocess
import sys
from typing import List, Optional

from ._errors import ExecutableNotFoundError
from ._executable import find_executable


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        exe = find_executable()
    except ExecutableNotFoundError as e:
        print(f"walsync: {e}", file=sys.stderr)
        return e.exit_code
    if sys.platform != "win32" and argv is None:
        os.execv(exe, [exe, *args])  # replaces this process: signals reach walsync directly
    return subprocess.call([exe, *args])


if __name__ == "__main__":
    sys.exit(main())
