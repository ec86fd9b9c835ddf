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
from casegraph.storage.backend import Backend, open_backend

log = logging.getLogger("casegraph.services")


@dataclass
class Services:
    settings: Settings
    backend: Backend
    graph: Any
    vectors: Any
    keywords: Any
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
            embedder = open_embedder(
                settings.embedding_model, settings.embedding_runtime, settings.model_cache_path,
                query_runtime=settings.query_runtime,
            )
            if wrap_embedder is not None:
                embedder = wrap_embedder(embedder)
        extractor = extractor or EntityExtractor(settings.spacy_model)
        backend = open_backend(
            settings.store, settings.data_dir, embedder,
            buffer_pool_mb=settings.buffer_pool_mb, checkpoint_wal_mb=settings.checkpoint_wal_mb,
        )
        graph, vectors, keywords, hygiene = backend.graph, backend.vectors, backend.keywords, backend.hygiene
        memories = MemoryService(
            settings, graph, vectors, embedder, extractor, clock, keywords=keywords, hygiene=hygiene
        )
        ticket_graph = backend.tickets
        tickets = TicketService(settings, ticket_graph, vectors, clock)
        memories.listeners.append(tickets.refresh_soon)
        # Last: after a write round, what it freed goes back to the OS (ops/malloc_trim.py).
        memories.listeners.append(FreeMemoryReleaser().release)
        try:
            # Relations a crash (or the migration that added them) left stale.
            refreshed = tickets.refresh()
        except BaseException:
            backend.close()
            raise
        if refreshed:
            log.info("recomputed the relations of %d tickets", refreshed)
        return cls(
            settings=settings,
            backend=backend,
            graph=graph,
            vectors=vectors,
            keywords=keywords,
            embedder=embedder,
            extractor=extractor,
            memories=memories,
            recall=RecallService(settings, graph, vectors, embedder, extractor, clock, keywords=keywords),
            tickets=tickets,
            explorer=GraphExplorer(ticket_graph, catch_up=tickets.catch_up),
            customer_data=CustomerDataService(backend.erasure, clock, on_change=memories.notify_changed),
            nodes=NodeReader(graph, graph, graph, ticket_graph, clock),
            customer_context=CustomerContextService(settings, graph, graph, hygiene, clock),
        )

    @property
    def schema_version(self) -> str:
        """The graph schema's last applied migration."""
        return self.graph.schema_version

    def save(self) -> None:
        """Write what is kept only in memory to disk (the vector indexes changed since the last save)."""
        self.backend.save()

    def vector_report(self) -> dict[str, Any]:
        """Does each agent's vector index hold exactly its memories?"""
        return self.backend.vector_report()

    def close(self) -> None:
        try:
            self.memories.close()
            self.tickets.close()
        finally:
            self.backend.close()
