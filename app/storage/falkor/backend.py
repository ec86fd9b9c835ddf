"""Opening the FalkorDB backend: the store, its vectors and keywords, hygiene, tickets, erasure."""

from __future__ import annotations

import logging
from typing import Any

from casegraph.storage.backend import Backend
from casegraph.storage.falkor.erasure import FalkorErasure
from casegraph.storage.falkor.hygiene import FalkorHygiene
from casegraph.storage.falkor.keywords import FalkorKeywords
from casegraph.storage.falkor.store import FalkorStore
from casegraph.storage.falkor.tickets import FalkorTickets
from casegraph.storage.falkor.vectors import FalkorVectors
from casegraph.storage.space import check_vector_space

log = logging.getLogger("casegraph.services")


def open_falkor(url: str, embedder: Any) -> Backend:
    graph = FalkorStore(url, dimension=int(embedder.dimension))
    try:
        check_vector_space(graph, embedder)
    except BaseException:
        graph.close()
        raise
    vectors = FalkorVectors(graph)
    log.info("opened %s: schema %s, %d agents", graph.address, graph.schema_version, len(graph.agents()))
    return Backend(
        name="falkordb",
        graph=graph,
        vectors=vectors,
        keywords=FalkorKeywords(graph),
        hygiene=FalkorHygiene(graph),
        tickets=FalkorTickets(graph),
        erasure=FalkorErasure(graph),
        vector_report=vectors.report,
        closers=[graph.close],
    )
