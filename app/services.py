"""The service objects wired together: opened once by the app's lifespan, closed once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casegraph.domain.clock import Clock, utcnow
from casegraph.domain.customer_context import CustomerContextService
from casegraph.domain.customer_data import CustomerDataService
from casegraph.domain.embedder import Embedder
from casegraph.domain.explore import GraphExplorer
from casegraph.domain.memory import MemoryService
from casegraph.domain.readers import NodeReader
from casegraph.domain.recall import RecallService
from casegraph.domain.tickets import TicketService
from casegraph.embedding.embedder import open_embedder
from casegraph.ops.malloc_trim import FreeMemoryReleaser
from casegraph.ops.settings import Settings
from casegraph.storage.embedded.datadir import check_vector_space
from casegraph.storage.embedded.erasure import EmbeddedCustomerErasure
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.hygiene import EmbeddedHygiene
from casegraph.storage.embedded.integrity import vector_report
from casegraph.storage.embedded.keywords import KeywordIndex
from casegraph.storage.embedded.tickets import TicketGraph
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.search import document_text

log = logging.getLogger("casegraph.services")


@dataclass
class Services:
    settings: Settings
    graph: GraphStore
    vectors: VectorStore
    keywords: KeywordIndex
    embedder: Embedder
    extractor: Any
    memories: MemoryService
    recall: RecallService
    tickets: TicketService
    explorer: GraphExplorer
    customer_data: CustomerDataService
    nodes: NodeReader
    customer_context: CustomerContextService

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        extractor: Any | None = None,
        clock: Clock = utcnow,
        wrap_embedder: Callable[[Embedder], Embedder] | None = None,
    ) -> Services:
        """Open the data directory: models, graph (migrated), vectors and keywords (reconciled).

        ``wrap_embedder`` wraps the embedder this opens (the app's metrics count its calls)."""
        from casegraph.extractors import EntityExtractor

        if embedder is None:
            embedder = open_embedder(settings.embedding_model, settings.embedding_runtime, settings.model_cache_path)
            if wrap_embedder is not None:
                embedder = wrap_embedder(embedder)
        extractor = extractor or EntityExtractor(settings.spacy_model)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        graph = GraphStore(
            settings.data_dir, buffer_pool_mb=settings.buffer_pool_mb, checkpoint_wal_mb=settings.checkpoint_wal_mb
        )
        keywords = None
        try:
            check_vector_space(graph, embedder)
            vectors = VectorStore(settings.data_dir / "vectors", embedder.dimension)
            # One read of every memory: the ids check the vectors and the keyword index,
            # the attributes fill the cache recall ranks from (app/storage/embedded/attrs_cache.py).
            graph_ids = graph.load_attrs()
            report = vectors.reconcile(graph_ids, graph.embeddings)
            keywords = KeywordIndex(settings.data_dir / "keywords")
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
            settings.data_dir, graph.schema_version, report.agents, report.added, report.removed,
            kw_report.added, kw_report.removed,
        )
        hygiene = EmbeddedHygiene(graph, vectors)
        memories = MemoryService(
            settings, graph, vectors, embedder, extractor, clock, keywords=keywords, hygiene=hygiene
        )
        ticket_graph = TicketGraph(graph)
        tickets = TicketService(settings, ticket_graph, vectors, clock)
        memories.listeners.append(tickets.refresh)
        # Last: after a write round, what it freed goes back to the OS (ops/malloc_trim.py).
        memories.listeners.append(FreeMemoryReleaser().release)
        try:
            # Relations a crash (or the migration that added them) left stale.
            refreshed = tickets.refresh()
        except BaseException:
            keywords.close()
            graph.close()
            raise
        if refreshed:
            log.info("recomputed the relations of %d tickets", refreshed)
        return cls(
            settings=settings,
            graph=graph,
            vectors=vectors,
            keywords=keywords,
            embedder=embedder,
            extractor=extractor,
            memories=memories,
            recall=RecallService(settings, graph, vectors, embedder, extractor, clock, keywords=keywords),
            tickets=tickets,
            explorer=GraphExplorer(ticket_graph),
            customer_data=CustomerDataService(
                EmbeddedCustomerErasure(graph, vectors, keywords), clock, on_change=memories.notify_changed
            ),
            nodes=NodeReader(graph, graph, graph, ticket_graph, clock),
            customer_context=CustomerContextService(settings, graph, graph, hygiene, clock),
        )

    @property
    def schema_version(self) -> str:
        """The graph schema's last applied migration."""
        return self.graph.schema_version

    def save(self) -> None:
        """Write what is kept only in memory to disk (the vector indexes changed since the last save)."""
        self.vectors.save()

    def vector_report(self) -> dict[str, Any]:
        """Does each agent's vector index hold exactly its memories? (``integrity.vector_report``)"""
        return vector_report(self.graph, self.vectors)

    def close(self) -> None:
        try:
            self.memories.close()
            self.vectors.save()
            self.keywords.close()
        finally:
            self.graph.close()
