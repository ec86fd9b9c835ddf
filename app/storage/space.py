"""The vector space of a store: the model, runtime and quantization that made its vectors.

``VectorSpace`` is recorded in the store's meta values (``StoreMaintenance.get_meta``) when
the store is created. Vectors of another space do not compare with them, so opening the
store with one is ``MODEL_MISMATCH`` until ``casegraph reembed`` (app/ops/reembed.py)
converts it. Both engines keep it the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from casegraph.errors import ModelMismatch

EMBEDDING_KEY = "embedding_model"
# Present while a re-embedding is under way: the vectors are of two spaces until it ends.
REEMBED_KEY = "reembed_target"


class MetaStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class VectorSpace:
    model: str
    dim: int
    runtime: str = "torch"
    quantization: str = "fp32"

    @classmethod
    def of(cls, embedder: Any) -> VectorSpace:
        return cls(
            model=embedder.model_id, dim=int(embedder.dimension),
            runtime=getattr(embedder, "runtime", "torch"), quantization=getattr(embedder, "quantization", "fp32"),
        )

    @classmethod
    def from_json(cls, text: str) -> VectorSpace:
        """A record; one written before runtimes existed was PyTorch fp32."""
        info = json.loads(text)
        return cls(
            model=info.get("model"), dim=int(info.get("dim", -1)),
            runtime=info.get("runtime", "torch"), quantization=info.get("quantization", "fp32"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def compatible(self, other: VectorSpace) -> bool:
        """Same model, size and quantization. PyTorch and ONNX fp32 compute the same
        vectors (checked at every ONNX load to a cosine of 0.9999), so either opens a
        directory the other built; int8 vectors are a little apart and do not."""
        return (self.model, self.dim, self.quantization) == (other.model, other.dim, other.quantization)

    def describe(self) -> str:
        return f"{self.model!r} on {self.runtime} ({self.quantization}, {self.dim} dims)"


def check_vector_space(meta: MetaStore, embedder: Any) -> VectorSpace:
    """Record the embedder's vector space in a new directory; in an existing one, refuse
    an embedder whose vectors would not compare with the stored ones. Returns the
    recorded space."""
    mine = VectorSpace.of(embedder)
    target = meta.get_meta(REEMBED_KEY)
    if target is not None:
        raise ModelMismatch(
            f"a re-embedding of this data directory to {VectorSpace.from_json(target).describe()} "
            "was interrupted; its vectors are of two models until it ends. Run `casegraph reembed` "
            "again to finish it (it resumes where it stopped)."
        )
    recorded = meta.get_meta(EMBEDDING_KEY)
    if recorded is None:
        meta.set_meta(EMBEDDING_KEY, mine.to_json())
        return mine
    built = VectorSpace.from_json(recorded)
    if not built.compatible(mine):
        raise ModelMismatch(
            f"this data directory was built with embedding model {built.describe()}; it cannot be "
            f"opened with {mine.describe()}: their vectors do not compare. Use the original "
            f"(CASEGRAPH_EMBEDDING_MODEL={built.model}, CASEGRAPH_EMBEDDING_RUNTIME={built.runtime}), "
            "a new data directory, or run `casegraph reembed` to re-embed every memory with the new one."
        )
    return built
