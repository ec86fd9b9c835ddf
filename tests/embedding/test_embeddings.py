"""The real embedding model: query vectors against stored ones."""

from __future__ import annotations

import numpy as np


def test_a_query_vector_is_the_vector_embed_gives_the_same_text(embedder):
    texts = [
        "was the damaged parcel refunded?",
        "Order #4521 arrived crushed; customer wants a replacement before Friday",
        "x",
        "a long message " * 80,  # past the model's 256-token window: truncated the same way
    ]
    batch = embedder.embed(texts)
    embedder.query_cache.clear()
    for text, stored in zip(texts, batch, strict=True):
        query = embedder.embed_query(text)
        assert query.shape == (embedder.dimension,) and query.dtype == np.float32
        assert np.allclose(query, stored, atol=1e-5)
        assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
        assert embedder.embed_query(text) is query  # the LRU cache answers a repeat


def test_a_query_runs_on_one_thread_and_a_batch_on_every_core_each_in_its_own_thread(embedder):
    import threading

    import torch

    seen: dict[str, int] = {}

    def query_side() -> None:
        embedder.query_cache.clear()
        embedder.embed_query("where is my refund for order 4521?")
        seen["after query"] = torch.get_num_threads()
        embedder.embed(["a batch after it"])
        seen["after batch"] = torch.get_num_threads()
        embedder.query_cache.clear()
        embedder.embed_query("and the replacement?")

    embedder.embed(["the calling thread embeds a batch first"])
    mine = torch.get_num_threads()
    worker = threading.Thread(target=query_side)
    worker.start()
    worker.join()
    assert seen == {"after query": 1, "after batch": embedder.threads}
    # Another thread's query left this thread's count alone.
    assert mine == embedder.threads and torch.get_num_threads() == mine


def test_a_single_query_runs_through_the_trace_and_gives_the_eager_vector(embedder):
    assert embedder.traced  # the default model traces and passes its probes
    texts = [
        "",
        "?",
        "Jane Doe wants to know where order #4521 is",
        "café 東京 🙂 — tracking 1Z999AA10123456784",
        "a long message " * 200,  # truncated at the model's token limit
    ] + [" ".join(["refund"] * n) for n in (1, 7, 31, 120)]
    embedder.query_cache.clear()
    for text in texts:
        # embed() runs the model eagerly (sentence-transformers' encode); a query, the trace.
        assert np.abs(embedder.embed_query(text) - embedder.embed([text])[0]).max() < 1e-6, text


def test_without_a_trace_a_query_runs_eagerly_with_the_same_vector(embedder, monkeypatch, caplog):
    import torch
    from casegraph.embedding.embedder import SentenceTransformerEmbedder

    def refuse(*args, **kwargs):
        raise RuntimeError("tracing refused")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    eager = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert not eager.traced
    assert "queries run eagerly" in caplog.text
    text = "where is my refund for order 4521?"
    embedder.query_cache.clear()
    assert np.abs(eager.embed_query(text) - embedder.embed_query(text)).max() < 1e-6
    assert not SentenceTransformerEmbedder("all-MiniLM-L6-v2", trace_queries=False).traced
