"""What a data directory holds beside its data: who has it open, and what made its vectors.

``DataDirLock``: Kùzu allows one process per database (docs/kuzu-quirks.md #8); this lock
makes that rule visible to our own tools too: ``casegraph restore`` refuses to touch a directory a server has open.
The kernel drops the lock when the process dies, even by SIGKILL.

``VectorSpace``: the model, runtime and quantization that computed the stored embeddings,
recorded in the graph's Meta table when the directory is created. Vectors of another
space do not compare with them, so opening the directory with one is ``MODEL_MISMATCH``
until ``casegraph reembed`` (app/ops/reembed.py) converts it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from casegraph.errors import ConfigurationError, ModelMismatch

LOCK_NAME = ".casegraph.lock"
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
