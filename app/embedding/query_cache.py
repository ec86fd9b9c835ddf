"""The query-vector cache both embedding runtimes keep: a bot asks the same few questions
again and again, and an embedding costs milliseconds where a dictionary lookup costs none."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class QueryVectorCache:
    """The vectors of the last ``size`` query texts, least recently used dropped first.

    Thread-safe; the embedding itself runs outside the lock, so two threads asking for the
    same new text may both compute it (the same vector). Vectors are returned read-only:
    every caller shares them.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The cached vector of ``text``, or ``compute(text)`` cached."""
        with self._lock:
            hit = self._vectors.get(text)
            if hit is not None:
                self._vectors.move_to_end(text)
                return hit
        vector = compute(text)
        vector.setflags(write=False)
        with self._lock:
            self._vectors[text] = vector
            if len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector

    def clear(self) -> None:
        """Forget every vector (the next query of each text is embedded again)."""
        with self._lock:
            self._vectors.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)
