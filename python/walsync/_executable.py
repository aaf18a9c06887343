"""Finding the walsync executable: WALSYNC_BIN, then the one shipped in the wheel, then PATH."""
import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Optional

from ._errors import ExecutableNotFoundError

#: Where a platform wheel puts the compiled executable.
BUNDLED_DIR = Path(__file__).resolve().parent / "bin"


def bundled_executable() -> Optional[str]:
    """The executable inside this package (platform wheels only), or None."""
    exe = BUNDLED_DIR / ("walsync.exe" if sys.platform == "win32" else "walsync")
    return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None


def find_executable(env: Optional[Mapping[str, str]] = None) -> str:
    """The walsync executable to run.

    1. ``WALSYNC_BIN`` if set (it must name an executable file);
    2. the executable shipped inside the wheel (``walsync/bin/``);
    3. ``walsync`` on ``PATH``.

    Raises ExecutableNotFoundError naming all three when none is found.
    """
    env = os.environ if env is None else env
    override = env.get("WALSYNC_BIN")
    if override:
        path = Path(override).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise ExecutableNotFoundError(
            127, f"WALSYNC_BIN={override} is not an executable file (unset it to use the bundled or PATH walsync)"
        )
    bundled = bundled_executable()
    if bundled:
        return bundled
    on_path = shutil.which("walsync", path=env.get("PATH"))
    if on_path:
        return on_path
    raise ExecutableNotFoundError(
        127,
        "no walsync executable found: WALSYNC_BIN is not set, this walsync package has no bundled "
        f"executable ({BUNDLED_DIR}; only platform wheels carry one) and there is no `walsync` on PATH. "
        "Install a platform wheel, put walsync on PATH, or set WALSYNC_BIN to its path.",
    )
