"""The embedding model exported to ONNX, offline, from the packaged weights, and its
quantized variants.

``export`` turns a sentence-transformers model (a BERT-style transformer, mean pooling,
optionally normalised) into ``model.onnx`` (fp32) and ``model-int8.onnx`` (weights of the
matrix multiplications quantized to 8 bits, activations quantized per batch at run time),
in a cache directory, beside the fp32 PyTorch vectors of a few fixed probe texts (the
references every load is checked against, app/embedding/onnx_runtime.py).

The other int8 files (``VARIANTS``: some layers kept fp32, other weight ranges, static
activation ranges) are made from ``model.onnx`` the first time a runtime asks for one
(``ensure_file``): they serve as query runtimes, measured against the fp32 documents
(BENCHMARKS.md, "Embedding runtimes"). The static one is calibrated on ``CALIBRATION``,
generic support sentences written for it, never texts of a quality benchmark.

torch and sentence-transformers are imported only while exporting. The export is our own
(``torch.onnx.export`` plus ``onnxruntime.quantization``), not sentence-transformers'
``backend="onnx"``: that needs ``optimum-onnx``, whose releases require
transformers < 4.58 while sentence-transformers 6 requires transformers 5.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.embedding.offline import quiet, stay_offline
from casegraph.errors import ConfigurationError

log = logging.getLogger("casegraph.embeddings")

FORMAT = 1  # bump when the export's layout or inputs change: older caches are re-exported


@dataclass(frozen=True, slots=True)
class Quantized:
    """How an int8 file is made from ``model.onnx``. Only the matrix multiplications by a
    weight are quantized: the embedding table stays fp32 (it is looked up, not multiplied;
    quantizing it lowered the probes' minimum cosine, 0.969 -> 0.964), and so do the
    products of two activations (attention scores)."""

    file: str
    quantization: str  # as the data directory records it (app/storage/space.py)
    per_channel: bool = True  # one weight scale per output column, not one per matrix
    reduce_range: bool = False  # 7-bit weights: no saturation of AVX2's u8 x s8 multiply-add
    keep_fp32: str = ""  # a regex of MatMul node names left in fp32
    static: bool = False  # activation ranges fixed from ``CALIBRATION``, not per run


# Unsigned weights throughout: signed ones can saturate AVX2's u8 x s8 multiply-add.
VARIANTS = {
    "onnx-int8": Quantized("model-int8.onnx", "int8-dynamic"),
    # The six FFN output projections (after GELU: the widest activations).
    "onnx-int8-ffn-fp32": Quantized("model-int8-ffn-fp32.onnx", "int8-dynamic-ffn-fp32",
                                    keep_fp32=r"layer\.\d+/output/dense/MatMul$"),
    # Attention's query, key and value projections.
    "onnx-int8-qkv-fp32": Quantized("model-int8-qkv-fp32.onnx", "int8-dynamic-qkv-fp32",
                                    keep_fp32=r"attention/self/(query|key|value)/MatMul$"),
    "onnx-int8-reduce-range": Quantized("model-int8-reduce-range.onnx", "int8-dynamic-reduce-range",
                                        reduce_range=True),
    # Activation ranges fixed from CALIBRATION (min/max). With every weight product int8 it
    # measured a probe cosine of 0.845 at worst (per-tensor weights, dynamic: 0.919);
    # the FFN output projections kept fp32 bring it to 0.956.
    "onnx-int8-static": Quantized("model-int8-static.onnx", "int8-static-ffn-fp32", static=True,
                                  keep_fp32=r"layer\.\d+/output/dense/MatMul$"),
}
FILES = {"onnx": "model.onnx", **{name: v.file for name, v in VARIANTS.items()}}
QUANTIZATION = {"onnx": "fp32", **{name: v.quantization for name, v in VARIANTS.items()}}
PROBES = (
    "",
    "?",
    "Where is order #4521? The parcel arrived damaged and I was promised a refund.",
    "Jane Doe called twice about the replacement charger; she wants it before Friday.",
    "café 東京 🙂 — tracking 1Z999AA10123456784",
    "Password reset link expired, customer locked out of the admin console",
    " ".join(["the customer asked again about the replacement charger for order 4521"] * 40),
)
# Generic support sentences, written for calibration (no quality benchmark's world).
CALIBRATION = (
    "Hi, I still haven't received my package and the tracking page hasn't changed in a week.",
    "Can you tell me when my refund will show up on my card?",
    "The app crashes every time I open the settings screen on my phone.",
    "I was charged twice for the same subscription this month.",
    "What is your return policy for items bought on sale?",
    "My account got locked after too many login attempts, please help.",
    "The delivery driver left the box at the wrong address.",
    "I'd like to change the shipping address on my order before it ships.",
    "Do you ship to Canada, and how long does it usually take?",
    "The replacement part you sent doesn't fit the model I have.",
    "Can I upgrade my plan in the middle of the billing cycle?",
    "I never got the confirmation email after signing up.",
    "Thanks, that solved it!",
    "ok",
    "Agent confirmed the exchange and emailed a prepaid return label.",
    "Customer prefers to be contacted by phone in the afternoon.",
    "Escalated to the billing team; waiting for their answer about the duplicate charge.",
    "The printer shows a paper jam error although there is no paper stuck.",
    "How do I reset my password if I no longer have access to my old email?",
    "Order 1187 was cancelled by mistake, can you reinstate it?",
    "Invoice INV-2291 lists the wrong company name.",
    "Our whole team lost access to the shared workspace this morning.",
    "The warranty expired last month but the screen started flickering before that.",
    "Please cancel my membership and confirm in writing.",
    "Is there a discount for students or non-profits?",
    "The voucher code says it is invalid at checkout.",
    "The flight was delayed four hours and I missed my connection.",
    "My booking shows the wrong date, I need the 14th not the 15th.",
    "Can I bring a second bag without paying the fee?",
    "The hotel room was not cleaned during our stay.",
    "We would like a table for four tonight at eight.",
    "Which train goes to the airport earliest on Sunday?",
    "The customer said the issue came back after the last software update.",
    "Recommended clearing the cache and reinstalling; the customer will try tonight.",
    "Refund approved for the damaged headphones, 5 to 7 business days.",
    "Customer is frustrated and asked to speak with a manager.",
    "Where can I download last year's invoices?",
    "The two-factor code never arrives by SMS.",
    "Hello? Is anyone there?",
    "I moved to a new apartment, please update my address for future orders.",
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
            "files": {"onnx": FILES["onnx"], "onnx-int8": FILES["onnx-int8"]}, "probes": list(PROBES),
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

    tok = tokenizer(source, 256)
    example = features(tok, ["a padded batch of two", "traced at export, checked below on many shapes"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent branches
        torch.onnx.export(
            MeanPooled().eval(), tuple(torch.from_numpy(example[n]) for n in names), str(work / FILES["onnx"]),
            input_names=names, output_names=["embedding"], opset_version=17, dynamo=False,
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
        )
    _quantize(work / FILES["onnx"], work / FILES["onnx-int8"], VARIANTS["onnx-int8"], tok)


def ensure_file(folder: Path, runtime: str, max_seq_length: int, model_path: Path) -> Path:
    """The file of ``runtime`` in an export folder, made from its ``model.onnx`` if it is
    not there yet (a variant nobody asked for before). Atomic, as ``export``: written
    beside, renamed into place; two processes making it at once both end with one."""
    path = folder / FILES[runtime]
    if path.is_file():
        return path
    source = folder / FILES["onnx"]
    if not source.is_file():
        raise ConfigurationError(f"the ONNX export in {folder} has no {FILES['onnx']}")
    fd, tmp = tempfile.mkstemp(prefix=".quantize-", suffix=".onnx", dir=folder)
    os.close(fd)
    try:
        _quantize(source, Path(tmp), VARIANTS[runtime], tokenizer(model_path, max_seq_length))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("made the %s model (%s) in %s", runtime, VARIANTS[runtime].quantization, folder)
    return path


def _quantize(source: Path, target: Path, how: Quantized, tok: Any) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    excluded = []
    if how.keep_fp32:
        graph = onnx.load(str(source), load_external_data=False).graph
        excluded = [n.name for n in graph.node if n.op_type == "MatMul" and re.search(how.keep_fp32, n.name)]
        if not excluded:
            raise ConfigurationError(f"no MatMul of {source} matches {how.keep_fp32!r}")
    with quiet(""), warnings.catch_warnings():  # onnxruntime.quantization warns about pre-processing
        warnings.simplefilter("ignore")
        if how.static:
            from onnxruntime.quantization import CalibrationMethod, QuantFormat

            quantize_static(
                str(source), str(target), _Calibration(tok), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul"], per_channel=how.per_channel, reduce_range=how.reduce_range,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, nodes_to_exclude=excluded,
                calibrate_method=CalibrationMethod.MinMax, extra_options={"MatMulConstBOnly": True},
            )
        else:
            quantize_dynamic(
                str(source), str(target), weight_type=QuantType.QUInt8, per_channel=how.per_channel,
                reduce_range=how.reduce_range, op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded,
            )


class _Calibration:
    """``CALIBRATION`` one text at a time, as queries run (onnxruntime's CalibrationDataReader)."""

    def __init__(self, tok: Any) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = (features(tok, [t]) for t in CALIBRATION)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def tokenizer(model_path: Path, max_length: int) -> Any:
    """The model's own tokenizer (``tokenizer.json``), truncating and padding as
    sentence-transformers does."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tok.enable_truncation(max_length)
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tok


def features(tok: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's inputs for ``texts`` (one padded batch)."""
    # sentence-transformers strips each text before tokenizing; so do we.
    encoded = tok.encode_batch([t.strip() for t in texts])
    return {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
    }
