"""``casegraph reembed``: convert a data directory to another embedding model or runtime.

Every memory is embedded again from its stored text, in batches. Each batch's vectors
commit in one transaction with a Meta row recording how far it got, so a killed run
loses at most the batch in flight and the next run resumes after the last one recorded.
While it runs (and after it was killed) the directory records the target in
``reembed_target``, and ``check_vector_space`` refuses to serve it: its vectors are of
two models. At the end one transaction records the new vector space, marks every ticket
for a refresh (their mean embeddings and similar-wording relations) and drops the
progress rows; the vector index, deleted at the start, is rebuilt from the graph by the
first open (which this command does before it returns).

A FalkorDB store (``CASEGRAPH_STORE=falkordb://...``) is converted the same way, agent by
agent (storage/falkor/reembed.py): its vectors are the memory nodes' own, each agent's
progress is recorded in the namespace, and a new vector size gets new vector indexes.
Stop every process serving the namespace first: those that keep running do not see the
target recorded (the ones that start do, and refuse to open until the end).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casegraph.domain.embedder import Embedder
from casegraph.ops.settings import Settings
from casegraph.storage.backend import is_embedded
from casegraph.storage.embedded import reembed as progress_rows
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.reembed import PROGRESS_PREFIX
from casegraph.storage.space import EMBEDDING_KEY, REEMBED_KEY, VectorSpace

log = logging.getLogger("casegraph.reembed")

__all__ = ["PROGRESS_PREFIX", "ReembedReport", "reembed"]


@dataclass(frozen=True)
class ReembedReport:
    source: VectorSpace | None
    target: VectorSpace
    memories: int
    embedded: int  # in this run
    resumed_at: int  # memories already done by an earlier, interrupted run
    seconds: float
    converted: bool = True  # False: the vectors already were of the target space


def reembed(
    settings: Settings,
    embedder: Embedder,
    *,
    batch_size: int = 256,
    progress: bool | None = None,
    after_batch: Callable[[int], None] | None = None,
) -> ReembedReport:
    """Re-embed every memory of ``settings.data_dir`` with ``embedder``; resumable.

    ``after_batch(done)`` runs after each committed batch (tests stop a run there).
    """
    if not is_embedded(settings.store):
        report = _reembed_server(settings, embedder, batch_size, progress, after_batch)
        if report.converted:
            _rebuild_index(settings, embedder)
        return report
    started = time.perf_counter()
    target = VectorSpace.of(embedder)
    graph = GraphStore(
        settings.data_dir, buffer_pool_mb=settings.buffer_pool_mb, checkpoint_wal_mb=settings.checkpoint_wal_mb
    )
    try:
        recorded = graph.get_meta(EMBEDDING_KEY)
        source = VectorSpace.from_json(recorded) if recorded is not None else None
        pending = graph.get_meta(REEMBED_KEY)
        if pending is None and (source is None or source.compatible(target)):
            log.info("nothing to re-embed: the directory's vectors are already %s", target.describe())
            return ReembedReport(source, target, 0, 0, 0, time.perf_counter() - started, converted=False)
        done_id, done = _start(graph, settings, target, pending)
        ids = progress_rows.memory_ids(graph)
        remaining = [i for i in ids if done_id is None or i > done_id]
        resumed_at = len(ids) - len(remaining)
        if resumed_at:
            log.info("resuming: %d of %d memories were re-embedded before", resumed_at, len(ids))
        embedded = _embed_all(graph, embedder, remaining, batch_size, done, resumed_at, len(ids), progress, after_batch)
        progress_rows.finish(graph, target)
    finally:
        graph.close()
    _rebuild_index(settings, embedder)
    return ReembedReport(source, target, len(ids), embedded, resumed_at, time.perf_counter() - started)


def _reembed_server(
    settings: Settings, embedder: Embedder, batch_size: int, progress: bool | None,
    after_batch: Callable[[int], None] | None,
) -> ReembedReport:
    """``reembed`` on a FalkorDB namespace: the same steps, agent by agent."""
    from casegraph.storage.falkor import reembed as server
    from casegraph.storage.falkor.store import FalkorStore
    from tqdm import tqdm

    started = time.perf_counter()
    target = VectorSpace.of(embedder)
    store = FalkorStore(settings.store, dimension=target.dim)
    try:
        recorded = store.get_meta(EMBEDDING_KEY)
        source = VectorSpace.from_json(recorded) if recorded is not None else None
        pending = store.get_meta(REEMBED_KEY)
        if pending is None and (source is None or source.compatible(target)):
            log.info("nothing to re-embed: the namespace's vectors are already %s", target.describe())
            return ReembedReport(source, target, 0, 0, 0, time.perf_counter() - started, converted=False)
        if pending is None or VectorSpace.from_json(pending) != target:
            server.record_target(store, target, new_size=source is None or source.dim != target.dim)
        todo: dict[str, tuple[list[str], list[str]]] = {}  # agent -> (all its ids, those not done)
        for agent_id in store.agents():
            done = server.last_done(store, agent_id)
            ids = server.memory_ids(store, agent_id)
            todo[agent_id] = ids, [i for i in ids if done is None or i > done]
        total = sum(len(ids) for ids, _ in todo.values())
        resumed_at = sum(len(ids) - len(rest) for ids, rest in todo.values())
        embedded = 0
        with tqdm(total=total, initial=resumed_at, unit="memory", desc="re-embedding", disable=progress is False,
                  mininterval=1.0) as bar:
            for agent_id, (_, rest) in todo.items():
                for start in range(0, len(rest), batch_size):
                    chunk = rest[start : start + batch_size]
                    texts = server.memory_contents(store, agent_id, chunk)
                    order = [i for i in chunk if i in texts]
                    server.write_batch(store, agent_id, order, embedder.embed([texts[i] for i in order]), chunk[-1])
                    embedded += len(order)
                    bar.update(len(chunk))
                    if after_batch is not None:
                        after_batch(resumed_at + embedded)
        server.finish(store, target)
    finally:
        store.close()
    return ReembedReport(source, target, total, embedded, resumed_at, time.perf_counter() - started)


def _start(graph: GraphStore, settings: Settings, target: VectorSpace, pending: str | None) -> tuple[str | None, int]:
    """Record the target (or pick up the one recorded); returns (last id done, batches done)."""
    if pending is not None and VectorSpace.from_json(pending) == target:
        found = progress_rows.last_progress(graph)
        return found if found is not None else (None, 0)
    if pending is not None:
        log.warning(
            "an interrupted re-embedding aimed at %s; starting again for %s",
            VectorSpace.from_json(pending).describe(), target.describe(),
        )
    progress_rows.record_target(graph, target)
    # The index would mix the two spaces; the first open after the end rebuilds it.
    for path in (settings.data_dir / "vectors").glob("*.usearch"):
        path.unlink()
    return None, 0


def _embed_all(
    graph: GraphStore, embedder: Embedder, ids: list[str], batch_size: int, batch_no: int,
    resumed_at: int, total: int, progress: bool | None, after_batch: Callable[[int], None] | None,
) -> int:
    from tqdm import tqdm

    embedded = 0
    with tqdm(total=total, initial=resumed_at, unit="memory", desc="re-embedding", disable=progress is False,
              mininterval=1.0) as bar:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            texts = progress_rows.memory_contents(graph, chunk)
            order = [i for i in chunk if i in texts]
            vectors = embedder.embed([texts[i] for i in order])
            batch_no += 1
            progress_rows.write_batch(graph, order, vectors, batch_no, chunk[-1])
            embedded += len(order)
            bar.update(len(chunk))
            if after_batch is not None:
                after_batch(resumed_at + embedded)
    return embedded


def _rebuild_index(settings: Settings, embedder: Any) -> None:
    """Open the directory the way the server does: the vector index is rebuilt from the
    graph and the tickets refreshed."""
    from casegraph.extractors import EntityExtractor
    from casegraph.services import Services

    Services.open(settings, embedder=embedder, extractor=EntityExtractor(settings.spacy_model)).close()
