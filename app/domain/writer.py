"""Group commit for the write path, in two pipelined stages.

Concurrent stores (eight bots each storing one message) would otherwise each pay for
their own ``encode`` call and their own graph transaction. Groups of validated memories
queued since the last round are concatenated and run through two stages, each on its own
thread:

- ``prepare`` (extraction + embedding: pure functions of the text) for round k+1 runs
  while
- ``commit`` (hygiene, the graph transaction, the vector index) runs for round k.

So the model never waits for a commit, and a commit's fixed costs are shared by every
group that arrived meanwhile. Commits happen one at a time, in arrival order, and a
caller's future resolves only after its commit: nothing is acknowledged before Kùzu has
it. Each caller still gets all-or-nothing for its own group: if a combined round fails in
either stage, its groups are retried one by one so one caller's failure never fails
another's. At most one prepared round waits for the committer (back-pressure: meanwhile
new groups gather into the next round).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

log = logging.getLogger("casegraph.writer")

In = TypeVar("In")
Out = TypeVar("Out")

_STOP = object()

Group = tuple[list[Any], Future]


class GroupCommitter(Generic[In, Out]):
    """Runs ``commit(prepare(items))`` on the concatenation of all groups queued since the
    last round. ``prepare`` maps items one to one (its output list is sliced per group)."""

    def __init__(
        self,
        commit: Callable[[Sequence[Any]], list[Out]],
        *,
        prepare: Callable[[Sequence[In]], list[Any]] | None = None,
        max_items: int = 512,
    ) -> None:
        self._commit = commit
        self._prepare = prepare or list
        self._max_items = max_items
        self._queue: queue.Queue = queue.Queue()
        self._ready: queue.Queue = queue.Queue(maxsize=1)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.rounds = 0

    def submit(self, group: Sequence[In]) -> list[Out]:
        """Queue one all-or-nothing group and wait for its results."""
        future: Future[list[Out]] = Future()
        self._ensure_started()
        self._queue.put((list(group), future))
        return future.result()

    def close(self) -> None:
        """Finish every queued group, then stop both threads."""
        with self._lock:
            if self._threads:
                self._queue.put(_STOP)
                for thread in self._threads:
                    thread.join(timeout=60)
                self._threads = []

    def _ensure_started(self) -> None:
        with self._lock:
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._run_prepare, name="casegraph-embed", daemon=True),
                    threading.Thread(target=self._run_commit, name="casegraph-writer", daemon=True),
                ]
                for thread in self._threads:
                    thread.start()

    # -- stage 1: prepare ---------------------------------------------------------------
    def _run_prepare(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._ready.put(_STOP)
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
            prepared = self._prepare_round(batch)
            if prepared:
                self._ready.put(prepared)
            if stop:
                self._ready.put(_STOP)
                return

    def _prepare_round(self, batch: list[Group]) -> list[tuple[list[Any], Future]]:
        """(prepared items, future) per group; a group whose preparation fails is answered."""
        if len(batch) > 1:
            try:
                mids = self._prepare([x for group, _ in batch for x in group])
            except Exception:
                log.warning("a combined prepare round failed; retrying its %d groups one by one", len(batch))
            else:
                out, start = [], 0
                for group, future in batch:
                    out.append((mids[start : start + len(group)], future))
                    start += len(group)
                return out
        out = []
        for group, future in batch:
            try:
                out.append((self._prepare(group), future))
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
        return out

    # -- stage 2: commit ----------------------------------------------------------------
    def _run_commit(self) -> None:
        while True:
            batch = self._ready.get()
            if batch is _STOP:
                return
            self._round(batch)

    def _round(self, batch: list[tuple[list[Any], Future]]) -> None:
        self.rounds += 1
        if len(batch) > 1:
            try:
                results = self._commit([x for mids, _ in batch for x in mids])
            except Exception:
                log.warning("a combined write round failed; retrying its %d groups one by one", len(batch))
            else:
                start = 0
                for mids, future in batch:
                    future.set_result(results[start : start + len(mids)])
                    start += len(mids)
                return
        for mids, future in batch:
            try:
                future.set_result(self._commit(mids))
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
