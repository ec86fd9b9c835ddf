"""A query runtime apart from the documents': stored vectors stay ONNX fp32 (PyTorch's),
recall's queries run on an int8 file of the same export, and a data directory records the
documents' runtime only, so the query runtime changes without a re-embedding."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import PRESETS
from casegraph.embedding import onnx_export
from casegraph.embedding.embedder import open_embedder
from casegraph.errors import ConfigurationError
from casegraph.ops.settings import QUERY_RUNTIMES, Settings
from casegraph.services import Services
from casegraph.storage.space import EMBEDDING_KEY, VectorSpace

from tests.conftest import make_settings
from tests.embedding.texts import TEXTS


@pytest.fixture(scope="module")
def fp32(model_cache):
    return open_embedder("all-MiniLM-L6-v2", "onnx", model_cache)


@pytest.fixture(scope="module")
def int8_queries(model_cache, fp32):  # after fp32: the one export serves both
    return open_embedder("all-MiniLM-L6-v2", "onnx", model_cache, query_runtime="onnx-int8")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1)


def test_queries_run_on_int8_close_to_the_fp32_documents_which_stay_bit_identical(fp32, int8_queries):
    e = int8_queries
    assert (e.runtime, e.quantization, e.query_runtime, e.dimension) == ("onnx", "fp32", "onnx-int8", 384)
    assert fp32.query_runtime == "onnx"
    documents = e.embed(TEXTS)
    assert np.array_equal(documents, fp32.embed(TEXTS))  # the vectors a data directory stores
    assert np.array_equal(e.embed([TEXTS[0]]), fp32.embed([TEXTS[0]]))
    for text in TEXTS:
        query = e.embed_query(text)
        assert query.shape == (384,) and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
        assert cosines(query, fp32.embed([text])[0]) >= 0.98, text
        assert not np.array_equal(query, fp32.embed_query(text))  # int8 indeed, not fp32
        assert e.embed_query(text) is query  # the LRU cache answers a repeat
    # Each query finds its own text first among the fp32 documents.
    asked = ["my parcel came broken, where is my order?", "Jane wants her money back for the charger",
             "I can't log in, the reset link is too old"]
    assert [int(np.argmax(documents @ e.embed_query(q))) for q in asked] == [0, 1, 2]


@pytest.mark.parametrize("variant", [v for v in onnx_export.VARIANTS if v != "onnx-int8"])
def test_every_query_variant_is_made_from_the_export_on_demand_and_checked(model_cache, fp32, variant):
    folder = fp32.folder
    e = open_embedder("all-MiniLM-L6-v2", "onnx", model_cache, query_runtime=variant)
    made = folder / onnx_export.FILES[variant]
    assert e.folder == folder and made.is_file()
    assert e.check()[0] >= 0.95
    assert np.array_equal(e.embed(TEXTS), fp32.embed(TEXTS))
    reference = fp32.embed(TEXTS)
    # Held to the check's tolerance only (the static one is the farthest: 0.956 on the probes).
    assert all(cosines(e.embed_query(t), v) >= 0.95 for t, v in zip(TEXTS, reference, strict=True))
    stamp = made.stat().st_mtime_ns
    open_embedder("all-MiniLM-L6-v2", "onnx", model_cache, query_runtime=variant)
    assert made.stat().st_mtime_ns == stamp  # made once, reused after


def test_the_query_session_is_checked_against_its_own_tolerance(model_cache, int8_queries, monkeypatch):
    from casegraph.embedding import onnx_runtime

    monkeypatch.setitem(onnx_runtime.TOLERANCE, "onnx-int8", (0.99999, 0.99999))
    monkeypatch.setattr(onnx_runtime, "export", lambda path, directory: directory / onnx_export.cache_key(path))
    assert open_embedder("all-MiniLM-L6-v2", "onnx", model_cache).check()[0] > 0.9999  # fp32 alone passes
    with pytest.raises(ConfigurationError) as info:
        open_embedder("all-MiniLM-L6-v2", "onnx", model_cache, query_runtime="onnx-int8")
    assert info.value.code == "EMBEDDING_CHECK_FAILED"
    assert "the onnx-int8 model's vectors differ from the PyTorch fp32 ones" in info.value.message


def test_the_query_runtime_setting_is_checked():
    # Unset: int8 queries on the ONNX runtimes (the measured default), the same on torch.
    assert Settings.from_env({}).query_runtime == "onnx-int8"
    assert Settings.from_env({"CASEGRAPH_EMBEDDING_RUNTIME": "torch"}).query_runtime == "same"
    assert Settings(embedding_runtime="torch").query_runtime == "same"
    assert Settings.from_env({"CASEGRAPH_QUERY_RUNTIME": "same"}).query_runtime == "same"
    assert Settings.from_env({"CASEGRAPH_QUERY_RUNTIME": "onnx-int8"}).query_runtime == "onnx-int8"
    assert set(QUERY_RUNTIMES) == {"same", *onnx_export.FILES}  # every file of the export, and "same"
    with pytest.raises(ConfigurationError, match="query_runtime must be one of same, onnx, onnx-int8"):
        Settings.from_env({"CASEGRAPH_QUERY_RUNTIME": "int4"})
    with pytest.raises(ConfigurationError, match="needs an ONNX embedding_runtime"):
        Settings.from_env({"CASEGRAPH_EMBEDDING_RUNTIME": "torch", "CASEGRAPH_QUERY_RUNTIME": "onnx-int8"})
    assert Settings.from_env({"CASEGRAPH_EMBEDDING_RUNTIME": "torch", "CASEGRAPH_QUERY_RUNTIME": "same"})
    with pytest.raises(ConfigurationError, match="query_runtime must be one of"):
        open_embedder("all-MiniLM-L6-v2", "onnx", None, query_runtime="int4")


def test_changing_the_query_runtime_needs_no_reembed(tmp_path, model_cache, fp32, int8_queries, extractor):
    """Opened by its settings (as the server does) with fp32 queries, then int8, then fp32
    again: no MODEL_MISMATCH, the record stays ONNX fp32, stored vectors are fp32's."""
    data = tmp_path / "data"
    ids = {}
    for round_, queries in enumerate(("same", "onnx-int8", "same")):
        settings = make_settings(data, embedding_runtime="onnx", query_runtime=queries, model_cache_dir=model_cache)
        services = Services.open(settings, extractor=extractor)
        try:
            assert services.embedder.query_runtime == ("onnx" if queries == "same" else queries)
            recorded = VectorSpace.from_json(services.graph.get_meta(EMBEDDING_KEY))
            assert recorded == VectorSpace("all-MiniLM-L6-v2", 384, "onnx", "fp32")
            text = TEXTS[round_]
            ids[text] = services.memories.store(StoreRequest(agent_id="bot", content=text)).id
            stored = services.graph.embeddings("bot", list(ids.values()))
            assert np.array_equal(stored, np.stack([fp32.embed([t])[0] for t in ids]))
            for t, memory_id in ids.items():
                top = services.recall.recall("bot", t, top_k=1, config=PRESETS["dense"])
                assert top[0].memory.id == memory_id
        finally:
            services.close()
