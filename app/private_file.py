"""Files only this user may read (the cookie secret, the VAPID key), made once."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def create_private_file(path: Path, content: bytes) -> None:
    """Write `content` beside `path`, then link it into place (mode 0600): several processes
    started at once on a fresh directory all end up reading the one whole file that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process's file won
            os.link(temporary, path)
    finally:
        temporary.unlink()
