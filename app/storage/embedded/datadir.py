"""Who has a data directory open.

``DataDirLock``: Kùzu allows one process per database (docs/kuzu-quirks.md #8); this lock
makes that rule visible to our own tools too: ``casegraph restore`` refuses to touch a directory a server has open.
The kernel drops the lock when the process dies, even by SIGKILL. (What made the vectors:
``casegraph.storage.space``.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from casegraph.errors import ConfigurationError

LOCK_NAME = ".casegraph.lock"


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigurationError(
                f"the data directory {self.path.parent} is in use by another process (a running "
                "server?): stop it first",
                code="DATA_DIR_IN_USE",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
