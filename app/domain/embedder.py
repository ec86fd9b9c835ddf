"""The ``Embedder`` protocol: what the domain asks of a text-embedding runtime.

The runtimes (app/embedding/: PyTorch, ONNX fp32 and int8) satisfy it structurally;
``casegraph.services`` opens one and hands it to the write path and recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    model_id: str
    dimension: int
    # What computes the vectors, recorded in the data directory (app/storage/embedded/datadir.py); an
    # embedder without them counts as "torch" / "fp32".
    runtime: str
    quantization: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one query, for searching: ``embed([text])[0]``, or close to it when
        queries run on a faster runtime than documents (``query_runtime``). Never stored:
        every persisted vector comes from ``embed``. Runtimes may cache it."""
        ...
