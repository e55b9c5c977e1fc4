"""Files only the engine's user may read: keys, passwords, tokens, registry credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union


def write_private(path: Union[str, Path], data: Union[str, bytes]) -> Path:
    """Write `data` to `path` with mode 0600, replacing the file at once so no reader sees it half-written.

    The file is created 0600 from the start, so a secret is never readable by others, even briefly, and an
    existing file with a broader mode is replaced rather than rewritten in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a .tmp left behind by a crash
    os.replace(tmp, path)
    return path
