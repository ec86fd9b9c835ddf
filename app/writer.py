"""Group commit for the write path.

Concurrent stores (eight bots each storing one message) would otherwise each pay for
their own ``encode`` call and their own graph transaction. A single writer thread takes
every group of validated memories queued since its last round and runs them through one
``extract_many``, one ``encode`` and one Kùzu transaction. Each caller still gets
all-or-nothing for its own group: if the combined round fails, the groups are retried
one by one so one caller's failure never fails another's.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger("casegraph.writer")

In = TypeVar("In")
Out = TypeVar("Out")

_STOP = object()


class GroupCommitter(Generic[In, Out]):
    """Runs ``process`` on the concatenation of all groups queued since the last round."""

    def __init__(self, process: Callable[[Sequence[In]], list[Out]], *, max_items: int = 512) -> None:
        self._process = process
        self._max_items = max_items
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.rounds = 0

    def submit(self, group: Sequence[In]) -> list[Out]:
        """Queue one all-or-nothing group and wait for its results."""
        future: Future[list[Out]] = Future()
        self._ensure_started()
        self._queue.put((list(group), future))
        return future.result()

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join(timeout=60)
                self._thread = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="casegraph-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            size = len(first[0])
            stop = False
            while size < self._max_items:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0])
            self._round(batch)
            if stop:
                return

    def _round(self, batch: list[tuple[list[In], Future]]) -> None:
        self.rounds += 1
        if len(batch) > 1:
            try:
                results = self._process([x for group, _ in batch for x in group])
            except Exception:
                log.warning("a combined write round failed; retrying its %d groups one by one", len(batch))
            else:
                start = 0
                for group, future in batch:
                    future.set_result(results[start : start + len(group)])
                    start += len(group)
                return
        for group, future in batch:
            try:
                future.set_result(self._process(group))
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
