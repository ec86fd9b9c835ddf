"""The embedding model on ONNX Runtime: exported offline from the packaged weights.

``export`` turns a sentence-transformers model (a BERT-style transformer, mean pooling,
optionally normalised) into ``model.onnx`` (fp32) and ``model-int8.onnx`` (weights of the
matrix multiplications quantized to 8 bits, activations quantized per batch at run time),
in a cache directory, beside the fp32 PyTorch vectors of a few fixed probe texts.
``OnnxEmbedder`` loads one of them and refuses it unless its vectors of the probes are
close enough to those references. ``onnxruntime`` is imported here only; torch and
sentence-transformers only while exporting, so a server on ONNX never loads torch.

The export is our own (``torch.onnx.export`` plus ``onnxruntime.quantization``), not
sentence-transformers' ``backend="onnx"``: that needs ``optimum-onnx``, whose releases
require transformers < 4.58 while sentence-transformers 6 requires transformers 5.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.embedding.offline import quiet, stay_offline
from casegraph.embedding.query_cache import QueryVectorCache
from casegraph.errors import ConfigurationError

log = logging.getLogger("casegraph.embeddings")

FORMAT = 1  # bump when the export's layout or inputs change: older caches are re-exported
FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
QUANTIZATION = {"onnx": "fp32", "onnx-int8": "int8-dynamic"}
# How close a runtime's vectors of the probes must be to the fp32 PyTorch ones (cosine).
# fp32 computes the same function (measured: 1.00000 on every probe); int8 measured a mean
# of 0.993 and a minimum of 0.98 on single texts (BENCHMARKS.md), so a minimum under 0.95
# means a broken export, not quantization.
TOLERANCE = {"onnx": (0.9999, 0.9999), "onnx-int8": (0.95, 0.98)}  # (min, mean)
PROBES = (
    "",
    "?",
    "Where is order #4521? The parcel arrived damaged and I was promised a refund.",
    "Jane Doe called twice about the replacement charger; she wants it before Friday.",
    "café 東京 🙂 — tracking 1Z999AA10123456784",
    "Password reset link expired, customer locked out of the admin console",
    " ".join(["the customer asked again about the replacement charger for order 4521"] * 40),
)


def cache_key(model_path: str) -> str:
    """Names the export of these weights: a new package version exports again."""
    path = Path(model_path)
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    for name in ("config.json", "modules.json", "tokenizer.json", "sentence_bert_config.json"):
        f = path / name
        if f.is_file():
            digest.update(name.encode() + f.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("pytorch_model.bin")):
        st = weights.stat()
        digest.update(f"{weights.name} {st.st_size} {st.st_mtime_ns}".encode())
    return f"{path.name}-{digest.hexdigest()[:16]}"


def _check_supported(model_path: Path) -> dict[str, Any]:
    """The model must be a transformer followed by mean pooling (and perhaps Normalize)."""
    try:
        modules = json.loads((model_path / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((model_path / pooling_dir / "config.json").read_text())
        config = json.loads((model_path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ConfigurationError(
            f"the ONNX runtimes need a sentence-transformers model directory ({model_path}): {exc}"
        ) from exc
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    )
    if kinds[:2] != ["Transformer", "Pooling"] or not mean_only or set(kinds[2:]) - {"Normalize"}:
        raise ConfigurationError(
            f"the ONNX runtimes support a transformer with mean pooling; {model_path} has {kinds}"
        )
    return {"max_seq_length": int(config.get("max_seq_length", 256))}


def export(model_path: str, directory: Path) -> Path:
    """Export fp32 and int8 models of ``model_path`` into ``directory/<cache_key>``, with
    the reference vectors; returns that folder. Atomic: a killed export leaves nothing
    that loads (it is written beside and renamed into place)."""
    source = Path(model_path)
    info = _check_supported(source)
    target = directory / cache_key(model_path)
    directory.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=directory))
    try:
        _export_into(source, work)
        (work / "manifest.json").write_text(json.dumps({
            "format": FORMAT, "source": str(source), "max_seq_length": info["max_seq_length"],
            "files": FILES, "probes": list(PROBES),
        }, indent=1))
        # Another process may have finished the same export meanwhile, or a failed one is
        # being replaced: move it aside first (a directory is not renamed onto another).
        if target.exists():
            aside = Path(tempfile.mkdtemp(prefix=".old-", dir=directory))
            os.replace(target, aside / "old")
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("exported %s to ONNX (fp32 and int8) in %s", source, target)
    return target


def _export_into(source: Path, work: Path) -> None:
    stay_offline()
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(source), device="cpu")
    reference = model.encode(
        list(PROBES), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    np.save(work / "reference.npy", np.asarray(reference, dtype=np.float32))
    transformer = model[0].auto_model

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    tokenizer = _tokenizer(source, 256)
    example = _features(tokenizer, ["a padded batch of two", "traced at export, checked below on many shapes"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches
        torch.onnx.export(
            MeanPooled().eval(), tuple(torch.from_numpy(example[n]) for n in names), str(work / FILES["onnx"]),
            input_names=names, output_names=["embedding"], opset_version=17, dynamo=False,
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
        )
    # Only the matrix multiplications: the embedding table stays fp32 (it is looked up, not
    # multiplied; quantizing it lowered the probes' minimum cosine, 0.969 -> 0.964).
    # Unsigned weights: signed ones can saturate AVX2's u8 x s8 multiply-add.
    with quiet(""):  # onnxruntime.quantization warns on the root logger about pre-processing
        quantize_dynamic(
            str(work / FILES["onnx"]), str(work / FILES["onnx-int8"]),
            weight_type=QuantType.QUInt8, per_channel=True, op_types_to_quantize=["MatMul"],
        )


def _tokenizer(model_path: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


def _features(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    # sentence-transformers strips each text before tokenizing; so do we.
    encoded = tokenizer.encode_batch([t.strip() for t in texts])
    return {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
    }


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class OnnxEmbedder:
    """The model on ONNX Runtime (``runtime`` "onnx" or "onnx-int8"), exported on first use.

    Two sessions over the same file: batches on ``threads`` (default every core), single
    queries on one thread, for the reason ``SentenceTransformerEmbedder`` gives. Batches
    are sorted by length before they are cut into 64s, as sentence-transformers does: less
    padding, and (int8) activations quantized over texts of like length.
    """

    def __init__(
        self,
        model: str,
        model_path: str,
        runtime: str,
        cache_dir: Path,
        *,
        query_cache_size: int = 1024,
        threads: int | None = None,
    ) -> None:
        if runtime not in FILES:
            raise ConfigurationError(f"unknown ONNX runtime {runtime!r}")
        self.model_id = model
        self.runtime = runtime
        self.quantization = QUANTIZATION[runtime]
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
            self._tokenizer = _tokenizer(Path(model_path), int(manifest["max_seq_length"]))

            def session(threads: int) -> Any:
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
                return ort.InferenceSession(
                    str(folder / FILES[self.runtime]), options, providers=["CPUExecutionProvider"]
                )

            self._batch_session = session(self._threads)
            self._query_session = session(1)
        except Exception as exc:  # missing or damaged files: any of them means "re-export"
            raise ConfigurationError(f"cannot load the ONNX export in {folder}: {exc}") from exc
        self.folder = folder

    def check(self) -> tuple[float, float]:
        """(min, mean) cosine of this runtime's probe vectors to the fp32 PyTorch ones,
        one text at a time and in one batch; ConfigurationError when under ``TOLERANCE``."""
        single = np.stack([self._run(self._query_session, [t])[0] for t in self._probes])
        batch = self._run(self._batch_session, list(self._probes))
        cosines = np.concatenate([(single * self._reference).sum(1), (batch * self._reference).sum(1)])
        low, avg = float(cosines.min()), float(cosines.mean())
        need_low, need_avg = TOLERANCE[self.runtime]
        if not (low >= need_low and avg >= need_avg):
            raise ConfigurationError(
                f"the {self.runtime} model's vectors differ from the PyTorch fp32 ones: cosine min "
                f"{low:.4f} (needs {need_low}), mean {avg:.4f} (needs {need_avg})",
                code="EMBEDDING_CHECK_FAILED",
            )
        log.info("%s model checked against PyTorch fp32: cosine min %.4f, mean %.4f", self.runtime, low, avg)
        return low, avg

    def _run(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        out = session.run(None, _features(self._tokenizer, texts))[0]
        return _normalise(np.asarray(out, dtype=np.float32))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        result = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            result[chunk] = self._run(self._batch_session, [texts[i] for i in chunk])
        return result

    def embed_query(self, text: str) -> np.ndarray:
        return self.query_cache.get(text, lambda t: self._run(self._query_session, [t])[0])
