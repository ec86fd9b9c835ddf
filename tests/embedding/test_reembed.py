"""A data directory keeps the vector space it was built with until `casegraph reembed`
converts it: refused with MODEL_MISMATCH before, resumable during, served after. On both
stores (a FalkorDB namespace is converted agent by agent); the SIGKILL test runs the
embedded one."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import PRESETS
from casegraph.embedding.embedder import open_embedder
from casegraph.errors import ModelMismatch
from casegraph.ops.reembed import PROGRESS_PREFIX, reembed
from casegraph.services import Services
from casegraph.storage.space import EMBEDDING_KEY, REEMBED_KEY, VectorSpace

from tests.conftest import make_settings
from tests.storage.backends import falkor, graph_rows

TEXTS = [
    ("T-1", "Order 4521 arrived with a cracked screen; the customer wants a replacement."),
    ("T-1", "Replacement for order 4521 shipped by courier, tracking sent by e-mail."),
    ("T-2", "Password reset link expired and the admin console is locked."),
    ("T-2", "Unlocked the admin console after a manual password reset."),
    ("T-3", "Invoice 88 charged twice in March; refund of the duplicate requested."),
    ("T-3", "Duplicate charge on invoice 88 refunded to the card."),
    ("T-4", "Customer asks whether the warranty covers water damage to the charger."),
]


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    return open_embedder("all-MiniLM-L6-v2", "onnx-int8", tmp_path_factory.mktemp("model-cache"))


@pytest.fixture
def store_dir(tmp_path, embedder, extractor):
    """A small store built with PyTorch fp32 (the conftest embedder), closed."""
    settings = make_settings(tmp_path / "data")
    services = Services.open(settings, embedder=embedder, extractor=extractor)
    for ticket, text in TEXTS:
        services.memories.store(StoreRequest(agent_id="bot", content=text, ticket_id=ticket))
    services.close()
    return settings


def snapshot(settings, embedder, extractor):
    """What the store holds: its record, every memory's embedding, the index files."""
    if falkor():
        from casegraph.storage.falkor.store import FalkorStore

        store = FalkorStore(settings.store)
        try:
            rows = store.read("bot", "MATCH (m:Memory) RETURN m.id, m.embedding ORDER BY m.id")
            return store.get_meta(EMBEDDING_KEY), [(i, list(e)) for i, e in rows], {}
        finally:
            store.close()
    from casegraph.storage.embedded.graph import GraphStore

    graph = GraphStore(settings.data_dir, buffer_pool_mb=64)
    try:
        record = graph.get_meta(EMBEDDING_KEY)
        rows = graph.read("MATCH (m:Memory) RETURN m.id, m.embedding ORDER BY m.id")
    finally:
        graph.close()
    files = {p.name: p.read_bytes() for p in sorted((settings.data_dir / "vectors").glob("*.usearch"))}
    return record, [(i, list(e)) for i, e in rows], files


def embedded_as_reembed_does(embedder, rows, batch_size):
    """int8 activations are quantized per batch: a text's vector depends a little on its
    batch, so the expected vectors come in reembed's batches (memory id order)."""
    rows = sorted(rows)
    out = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        out.update(zip([i for i, _ in chunk], embedder.embed([c for _, c in chunk]), strict=True))
    return out


def dense_top(services, query):
    return services.recall.recall("bot", query, top_k=1, config=PRESETS["dense"])[0].memory.content


def test_another_vector_space_is_refused_with_model_mismatch_and_nothing_changes(store_dir, embedder, extractor, int8):
    before = snapshot(store_dir, embedder, extractor)
    with pytest.raises(ModelMismatch) as info:
        Services.open(store_dir, embedder=int8, extractor=extractor)
    assert info.value.code == "MODEL_MISMATCH"
    message = info.value.message
    assert "'all-MiniLM-L6-v2' on torch (fp32" in message and "onnx-int8" in message
    assert "casegraph reembed" in message
    assert snapshot(store_dir, embedder, extractor) == before


def test_reembed_converts_every_memory_and_recall_works_after(store_dir, embedder, extractor, int8):
    report = reembed(store_dir, int8, batch_size=3, progress=False)
    assert report.converted and report.memories == len(TEXTS) and report.embedded == len(TEXTS)
    assert report.source == VectorSpace("all-MiniLM-L6-v2", 384) and report.target.runtime == "onnx-int8"
    services = Services.open(store_dir, embedder=int8, extractor=extractor)
    try:
        assert VectorSpace.from_json(services.graph.get_meta(EMBEDDING_KEY)) == VectorSpace.of(int8)
        assert services.graph.get_meta(REEMBED_KEY) is None
        rows = [tuple(r) for r in graph_rows(services.graph, "bot", "MATCH (m:Memory) RETURN m.id, m.content")]
        ids = [i for i, _ in rows]
        # The graph and the rebuilt index hold the int8 vectors of each memory's text.
        stored = services.graph.embeddings("bot", ids)
        expected = embedded_as_reembed_does(int8, rows, 3)
        assert np.abs(stored - np.stack([expected[i] for i in ids])).max() < 1e-5
        if not falkor():  # FalkorDB's index is over the nodes' own vectors
            indexed = services.vectors.vectors_of("bot", ids)
            assert all(np.abs(indexed[i] - s).max() < 1e-3 for i, s in zip(ids, stored, strict=True))
        assert dense_top(services, "my login reset link no longer works") == TEXTS[2][1]
        assert dense_top(services, "was the double charge paid back?") in (TEXTS[4][1], TEXTS[5][1])
        assert services.tickets.tickets.stale_tickets(10) == []  # refreshed with the new vectors
        if falkor():
            g = services.graph
            assert not [f for f in g.redis.hkeys(g.key("meta")) if f.startswith(PROGRESS_PREFIX)]
        else:
            assert not services.graph.read("MATCH (x:Meta) WHERE starts_with(x.key, $p) RETURN x.key",
                                            {"p": PROGRESS_PREFIX})
    finally:
        services.close()
    # The old runtime is now the one refused; a second run has nothing to do.
    with pytest.raises(ModelMismatch):
        Services.open(store_dir, embedder=embedder, extractor=extractor)
    assert not reembed(store_dir, int8, progress=False).converted


class Killed(Exception):
    pass


def test_an_interrupted_reembed_is_refused_by_both_spaces_and_resumes(store_dir, embedder, extractor, int8):
    def stop_after_two_batches(done: int) -> None:
        if done >= 4:
            raise Killed

    with pytest.raises(Killed):
        reembed(store_dir, int8, batch_size=2, progress=False, after_batch=stop_after_two_batches)
    for either in (embedder, int8):
        with pytest.raises(ModelMismatch) as info:
            Services.open(store_dir, embedder=either, extractor=extractor)
        assert "was interrupted" in info.value.message and "casegraph reembed" in info.value.message
    report = reembed(store_dir, int8, batch_size=2, progress=False)
    assert (report.resumed_at, report.embedded, report.memories) == (4, 3, 7)
    services = Services.open(store_dir, embedder=int8, extractor=extractor)
    try:
        rows = [tuple(r) for r in graph_rows(services.graph, "bot", "MATCH (m:Memory) RETURN m.id, m.content")]
        stored = services.graph.embeddings("bot", [i for i, _ in rows])
        expected = embedded_as_reembed_does(int8, rows, 2)
        assert np.abs(stored - np.stack([expected[i] for i, _ in rows])).max() < 1e-5
        assert dense_top(services, "is water damage covered by the warranty?") == TEXTS[6][1]
    finally:
        services.close()


def test_the_reembed_command_converts_and_says_how_to_serve(store_dir, int8, extractor, monkeypatch, capsys):
    from casegraph.ops.cli import main

    monkeypatch.setenv("CASEGRAPH_MODEL_CACHE_DIR", str(int8.folder.parent))
    monkeypatch.setenv("CASEGRAPH_BUFFER_POOL_MB", "64")
    args = ["reembed", "--data-dir", str(store_dir.data_dir), "--store", store_dir.store, "--runtime", "onnx-int8",
            "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"re-embedded {len(TEXTS)} memories (0 by an earlier run)" in err
    assert "CASEGRAPH_EMBEDDING_RUNTIME=onnx-int8" in err
    assert main(args) == 0
    assert "nothing to re-embed" in capsys.readouterr().err
    services = Services.open(store_dir, embedder=int8, extractor=extractor)
    services.close()
    assert main(["reembed", "--data-dir", str(store_dir.data_dir / "none")]) == 2


@pytest.mark.embedded_only
def test_a_reembed_killed_by_sigkill_loses_nothing_and_resumes(tmp_path, embedder, extractor, int8):
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time
    from pathlib import Path

    # Enough memories that one-at-a-time re-embedding takes seconds: with 120 it could finish
    # between two progress redraws, before the kill.
    N = 1000
    settings = make_settings(tmp_path / "data")
    services = Services.open(settings, embedder=embedder, extractor=extractor)
    services.memories.store_batch([
        StoreRequest(agent_id="bot", content=f"Order {1000 + i} for customer {i}: {TEXTS[i % len(TEXTS)][1]}")
        for i in range(N)
    ], hygiene=False)
    services.close()
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEGRAPH_")}
    env.update({"CASEGRAPH_MODEL_CACHE_DIR": str(int8.folder.parent), "CASEGRAPH_BUFFER_POOL_MB": "64",
                "HF_HUB_OFFLINE": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "casegraph.ops.cli", "reembed", "--data-dir", str(settings.data_dir), "--runtime", "onnx-int8",
         "--batch-size", "1", "--progress"],
        cwd=root, env=env, stderr=subprocess.PIPE,
    )
    seen, ended = threading.Event(), threading.Event()
    said: list[str] = []

    def watch() -> None:  # tqdm redraws "re-embedding: ... 17/1000" with carriage returns
        while c := proc.stderr.read(1):
            said.append(c.decode(errors="replace"))
            if c in (b"\r", b"\n") and any(f"| {n}/{N}" in "".join(said[-200:]) for n in range(5, N // 2)):
                seen.set()
        ended.set()  # the process ended (or closed stderr) before it was seen half-way

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.monotonic() + 300
    while not seen.is_set() and not ended.is_set() and time.monotonic() < deadline:
        seen.wait(0.05)
    assert seen.is_set(), f"the reembed was not seen half-way; it said: {''.join(said)[-2000:]!r}"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    with pytest.raises(ModelMismatch, match="was interrupted"):
        Services.open(settings, embedder=int8, extractor=extractor)
    report = reembed(settings, int8, batch_size=16, progress=False)
    assert 5 <= report.resumed_at < N and report.resumed_at + report.embedded == report.memories == N
    services = Services.open(settings, embedder=int8, extractor=extractor)
    try:
        assert services.graph.read("MATCH (m:Memory) RETURN count(m)")[0][0] == N
        assert len(services.vectors.vectors_of("bot", [r[0] for r in services.graph.read("MATCH (m:Memory) RETURN m.id")])) == N
        top = dense_top(services, "my login reset link no longer works")
        assert top.endswith((TEXTS[2][1], TEXTS[3][1])), top
    finally:
        services.close()
