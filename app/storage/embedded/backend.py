"""Opening the embedded backend: the graph (migrated), vectors and keywords (reconciled)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from casegraph.storage.backend import Backend
from casegraph.storage.embedded.erasure import EmbeddedCustomerErasure
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.hygiene import EmbeddedHygiene
from casegraph.storage.embedded.integrity import vector_report
from casegraph.storage.embedded.keywords import KeywordIndex
from casegraph.storage.embedded.tickets import TicketGraph
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.search import document_text
from casegraph.storage.space import check_vector_space

log = logging.getLogger("casegraph.services")


def open_embedded(data_dir: Path, embedder: Any, *, buffer_pool_mb: int, checkpoint_wal_mb: int) -> Backend:
    data_dir.mkdir(parents=True, exist_ok=True)
    graph = GraphStore(data_dir, buffer_pool_mb=buffer_pool_mb, checkpoint_wal_mb=checkpoint_wal_mb)
    keywords = None
    try:
        check_vector_space(graph, embedder)
        vectors = VectorStore(data_dir / "vectors", embedder.dimension)
        # Recall's link hops and customer filters read memory keys off edges and map them
        # here (GraphStore.key_ids): the graph is given the map once, recall never passes it.
        graph.key_ids = vectors.ids_of
        # One read of every memory: the ids check the vectors and the keyword index,
        # the attributes fill the cache recall ranks from (app/storage/embedded/attrs_cache.py).
        graph_ids = graph.load_attrs()
        report = vectors.reconcile(graph_ids, graph.embeddings)
        keywords = KeywordIndex(data_dir / "keywords")
        kw_report = keywords.reconcile(
            graph_ids,
            lambda a, ids: ((m, document_text(c, t)) for m, c, t in graph.memory_texts(a, ids)),
        )
    except BaseException:
        if keywords is not None:
            keywords.close()
        graph.close()
        raise
    log.info(
        "opened %s: schema %s, %d agents, vectors +%d -%d, keywords +%d -%d",
        data_dir, graph.schema_version, report.agents, report.added, report.removed,
        kw_report.added, kw_report.removed,
    )
    return Backend(
        name="embedded",
        graph=graph,
        vectors=vectors,
        keywords=keywords,
        hygiene=EmbeddedHygiene(graph, vectors),
        tickets=TicketGraph(graph),
        erasure=EmbeddedCustomerErasure(graph, vectors, keywords),
        vector_report=lambda: vector_report(graph, vectors),
        save=vectors.save,
        closers=[vectors.save, keywords.close, graph.close],
    )
