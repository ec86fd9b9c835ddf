"""The embedding model on ONNX Runtime, checked against PyTorch at every load.

``OnnxEmbedder`` loads files of an export (app/embedding/onnx_export.py: made offline from
the packaged weights, once, into a cache) and refuses them unless their vectors of a few
fixed probe texts are close enough to the fp32 PyTorch references stored beside them.
Documents (``embed``) and queries (``embed_query``) may run on different files of the
same model: stored vectors from fp32, exactly PyTorch's, and queries from a faster int8
file (``query_runtime``), which only has to land near them in the same space. Only the
documents' runtime is recorded in a data directory, so the query runtime can change
without a re-embedding. ``onnxruntime`` is imported here only; a server on ONNX never
loads torch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.embedding.onnx_export import (
    FILES,
    QUANTIZATION,
    VARIANTS,
    cache_key,
    ensure_file,
    export,
    features,
    tokenizer,
)
from casegraph.embedding.query_cache import QueryVectorCache
from casegraph.errors import ConfigurationError

log = logging.getLogger("casegraph.embeddings")

# Runtimes whose vectors can be stored (and recorded in a data directory); every file of
# the export can embed queries.
DOCUMENT_RUNTIMES = ("onnx", "onnx-int8")
# How close a runtime's vectors of the probes must be to the fp32 PyTorch ones (cosine).
# fp32 computes the same function (measured: 1.00000 on every probe); int8 measured a mean
# of 0.993 and a minimum of 0.98 on single texts (BENCHMARKS.md), so a minimum under 0.95
# means a broken export, not quantization. The other int8 files are held to the same.
TOLERANCE = {"onnx": (0.9999, 0.9999), **{name: (0.95, 0.98) for name in VARIANTS}}  # (min, mean)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxEmbedder:
    """The model on ONNX Runtime: documents on ``runtime`` ("onnx" or "onnx-int8"), queries
    on ``query_runtime`` (any file of ``FILES``; default the same), exported on first use.

    Two sessions: batches on ``threads`` (default every core), single queries on one
    thread, for the reason ``SentenceTransformerEmbedder`` gives. Batches are sorted by
    length before they are cut into 64s, as sentence-transformers does: less padding, and
    (int8) activations quantized over texts of like length. ``runtime`` and
    ``quantization`` are the documents' (what a data directory records).
    """

    def __init__(
        self,
        model: str,
        model_path: str,
        runtime: str,
        cache_dir: Path,
        *,
        query_runtime: str | None = None,
        query_cache_size: int = 1024,
        threads: int | None = None,
    ) -> None:
        if runtime not in DOCUMENT_RUNTIMES:
            raise ConfigurationError(f"unknown ONNX runtime {runtime!r}")
        query_runtime = query_runtime or runtime
        if query_runtime not in FILES:
            raise ConfigurationError(f"unknown ONNX query runtime {query_runtime!r}")
        self.model_id = model
        self.runtime = runtime
        self.quantization = QUANTIZATION[runtime]
        self.query_runtime = query_runtime
        self._threads = threads or os.cpu_count() or 1
        folder = cache_dir / cache_key(model_path)
        if not (folder / "manifest.json").is_file():
            log.info("no ONNX export of %s in %s yet: exporting (once)", model, cache_dir)
            folder = export(model_path, cache_dir)
        try:
            self._load(folder, model_path)
            self.check()
        except ConfigurationError as exc:
            log.warning("the cached ONNX export failed its check (%s): exporting again", exc.message)
            folder = export(model_path, cache_dir)
            self._load(folder, model_path)
            self.check()
        self.dimension = int(self._reference.shape[1])
        self.query_cache = QueryVectorCache(query_cache_size)

    def _load(self, folder: Path, model_path: str) -> None:
        import onnxruntime as ort

        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            self._reference = np.load(folder / "reference.npy")
            self._probes = tuple(manifest["probes"])
            max_length = int(manifest["max_seq_length"])
            self._tokenizer = tokenizer(Path(model_path), max_length)

            def session(runtime: str, threads: int) -> Any:
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # Threads that wait sleep, as OMP_WAIT_POLICY=PASSIVE does for torch
                # (app/__init__.py): Kùzu, spaCy and the event loop share the cores.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.log_severity_level = 3
                # The arena keeps the largest batch's activations for good: two sessions
                # held 416 MB after a few batches with it, 332 MB without.
                options.enable_cpu_mem_arena = False
                path = ensure_file(folder, runtime, max_length, Path(model_path))
                return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            self._batch_session = session(self.runtime, self._threads)
            self._query_session = session(self.query_runtime, 1)
        except Exception as exc:  # missing or damaged files: any of them means "re-export"
            raise ConfigurationError(f"cannot load the ONNX export in {folder}: {exc}") from exc
        self.folder = folder

    def check(self) -> tuple[float, float]:
        """(min, mean) cosine of the probe vectors to the fp32 PyTorch ones, one text at a
        time (the query session) and in one batch (the documents'); ConfigurationError
        when either session is under its runtime's ``TOLERANCE``."""
        single = np.stack([self._run(self._query_session, [t])[0] for t in self._probes])
        batch = self._run(self._batch_session, list(self._probes))
        cosines = []
        for runtime, vectors in ((self.query_runtime, single), (self.runtime, batch)):
            found = (vectors * self._reference).sum(1)
            low, avg = float(found.min()), float(found.mean())
            need_low, need_avg = TOLERANCE[runtime]
            if not (low >= need_low and avg >= need_avg):
                raise ConfigurationError(
                    f"the {runtime} model's vectors differ from the PyTorch fp32 ones: cosine min "
                    f"{low:.4f} (needs {need_low}), mean {avg:.4f} (needs {need_avg})",
                    code="EMBEDDING_CHECK_FAILED",
                )
            log.info("%s model checked against PyTorch fp32: cosine min %.4f, mean %.4f", runtime, low, avg)
            cosines.append(found)
        both = np.concatenate(cosines)
        return float(both.min()), float(both.mean())

    def _run(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        out = session.run(None, features(self._tokenizer, texts))[0]
        return _normalise(np.asarray(out, dtype=np.float32))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors to store: always the documents' runtime, never the query one."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        result = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            result[chunk] = self._run(self._batch_session, [texts[i] for i in chunk])
        return result

    def embed_query(self, text: str) -> np.ndarray:
        """A query's vector, from the query runtime: for searching, never to be stored."""
        return self.query_cache.get(text, lambda t: self._run(self._query_session, [t])[0])
