"""The ONNX runtimes: exported from the packaged model, checked against PyTorch at load."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.embedding.embedder import open_embedder
from casegraph.errors import ConfigurationError
from casegraph.ops.settings import Settings

from tests.embedding.texts import TEXTS


@pytest.fixture(scope="module")
def onnx_fp32(model_cache):
    return open_embedder("all-MiniLM-L6-v2", "onnx", model_cache)


@pytest.fixture(scope="module")
def onnx_int8(model_cache, onnx_fp32):  # after fp32: the one export serves both
    return open_embedder("all-MiniLM-L6-v2", "onnx-int8", model_cache)


def test_onnx_fp32_gives_the_pytorch_vectors_in_batches_and_one_at_a_time(embedder, onnx_fp32):
    assert (onnx_fp32.runtime, onnx_fp32.quantization, onnx_fp32.dimension) == ("onnx", "fp32", 384)
    torch_vectors = embedder.embed(TEXTS)
    batch = onnx_fp32.embed(TEXTS)
    assert batch.dtype == np.float32 and batch.shape == (len(TEXTS), 384)
    assert np.abs(batch - torch_vectors).max() < 1e-4
    for text, expected in zip(TEXTS, torch_vectors, strict=True):
        query = onnx_fp32.embed_query(text)
        assert np.abs(query - expected).max() < 1e-4
        assert onnx_fp32.embed_query(text) is query  # the LRU cache answers a repeat
    assert onnx_fp32.embed([]).shape == (0, 384)


def test_onnx_int8_is_close_to_pytorch_and_ranks_the_same_text_first(embedder, onnx_int8):
    assert (onnx_int8.runtime, onnx_int8.quantization) == ("onnx-int8", "int8-dynamic")
    torch_vectors = embedder.embed(TEXTS)
    int8 = onnx_int8.embed(TEXTS)
    cosines = (int8 * torch_vectors).sum(1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.98, cosines
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    query = onnx_int8.embed_query("my parcel came broken, where is my order?")
    assert int(np.argmax(int8 @ query)) == 0
    query = onnx_int8.embed_query("I can't log in, the reset link is too old")
    assert int(np.argmax(int8 @ query)) == 2


def test_a_cached_export_is_reused_and_a_damaged_one_exported_again(model_cache, onnx_int8, monkeypatch, caplog):
    from casegraph.embedding import onnx_runtime as onnx_embeddings

    folder = onnx_int8.folder
    calls = []
    real_export = onnx_embeddings.export
    monkeypatch.setattr(onnx_embeddings, "export", lambda *a: calls.append(a) or real_export(*a))
    again = open_embedder("all-MiniLM-L6-v2", "onnx-int8", model_cache)
    assert calls == [] and again.folder == folder
    # References that no longer match what the model computes: the check fails, and the
    # export is made again from the packaged weights.
    np.save(folder / "reference.npy", -np.load(folder / "reference.npy"))
    repaired = open_embedder("all-MiniLM-L6-v2", "onnx-int8", model_cache)
    assert len(calls) == 1 and "failed its check" in caplog.text
    assert repaired.check()[0] > 0.95


def test_an_export_that_stays_off_is_refused_with_a_clear_error(model_cache, onnx_int8, monkeypatch):
    from casegraph.embedding import onnx_runtime as onnx_embeddings

    monkeypatch.setitem(onnx_embeddings.TOLERANCE, "onnx-int8", (0.99999, 0.99999))
    monkeypatch.setattr(onnx_embeddings, "export", lambda path, directory: directory / onnx_embeddings.cache_key(path))
    with pytest.raises(ConfigurationError) as info:
        open_embedder("all-MiniLM-L6-v2", "onnx-int8", model_cache)
    assert info.value.code == "EMBEDDING_CHECK_FAILED"
    assert "differ from the PyTorch fp32 ones" in info.value.message


def test_the_runtime_setting_is_checked():
    assert Settings.from_env({}).embedding_runtime == "onnx"
    assert Settings.from_env({"CASEGRAPH_EMBEDDING_RUNTIME": "onnx-int8"}).embedding_runtime == "onnx-int8"
    with pytest.raises(ConfigurationError, match="embedding_runtime must be one of"):
        Settings.from_env({"CASEGRAPH_EMBEDDING_RUNTIME": "tensorrt"})
    assert str(Settings.from_env({"XDG_CACHE_HOME": "/x"}).model_cache_path) == "/x/casegraph/models"
    assert Settings.from_env({}).model_cache_path.parts[-3:] == (".cache", "casegraph", "models")
    assert str(Settings.from_env({"CASEGRAPH_MODEL_CACHE_DIR": "/c"}).model_cache_path) == "/c"
    with pytest.raises(ConfigurationError):
        open_embedder("all-MiniLM-L6-v2", "tensorrt", None)


def test_export_model_makes_or_checks_both_exports(model_cache, onnx_int8, capsys):
    from casegraph.ops.cli import main

    assert main(["export-model", "--cache-dir", str(model_cache)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"onnx: {onnx_int8.folder}", f"onnx-int8: {onnx_int8.folder}"]
    assert {p.name for p in onnx_int8.folder.iterdir()} >= {"model.onnx", "model-int8.onnx", "reference.npy"}
