"""A shared/exclusive lock: many readers at once, or one writer (writers go first).

GraphStore needs it because Kùzu 0.11.3 corrupts its heap (the process aborts with
"free(): invalid next size") when a full-text query runs while a write transaction
commits; full-text queries alone run safely side by side.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class SharedExclusiveLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            # Waiting writers go first, so a steady stream of readers cannot starve them.
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
