"""The indexes of an agent's graph on FalkorDB.

The layout is the embedded schema's (graph_schema/*.cypher): the same labels, properties
and keys (``uid`` of customers, orders, tickets, entities and aliases is
``"<agent>|<key>"``, rows.py ``node_uid``), so the statements of both engines read alike.
What differs: FalkorDB has no tables to declare, so a graph needs only its indexes; times
are microseconds since the epoch; ``Memory.embedding`` is a ``vecf32`` with a vector index
(cosine), ``Memory.key`` is its ``vector_key`` and ``Memory.doc`` the text its full-text
index searches (``keywords.memory_document``: the analysed terms of content and tags).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (label, property) with a range index: every key a statement matches nodes by.
RANGE_INDEXES = (
    ("Memory", "id"), ("Memory", "key"), ("Memory", "session_id"), ("Memory", "customer_id"),
    ("Customer", "uid"), ("Order", "uid"), ("Ticket", "uid"), ("Ticket", "refresh_token"),
    ("Session", "id"), ("Session", "customer_id"), ("Entity", "uid"), ("Alias", "uid"),
    ("TicketEvent", "id"), ("KeywordStats", "epoch"),
)
# The node that counts the changes of an agent's searchable texts (falkor/keywords.py);
# its index registers the label before any write (docs/falkordb-quirks.md #2).
KEYWORD_STATS_LABEL = "KeywordStats"
FULLTEXT_LABEL = "Memory"
FULLTEXT_PROPERTY = "doc"


def index_statements(dimension: int | None) -> list[str]:
    """What creates every index of an agent's graph (each one statement); the vector
    index only once its size is known (``dimension``)."""
    out = [f"CREATE INDEX FOR (n:{label}) ON (n.{prop})" for label, prop in RANGE_INDEXES]
    if dimension is not None:
        out.append(
            "CREATE VECTOR INDEX FOR (m:Memory) ON (m.embedding) "
            f"OPTIONS {{dimension: {int(dimension)}, similarityFunction: 'cosine'}}"
        )
    out.append(
        f"CALL db.idx.fulltext.createNodeIndex({{label: '{FULLTEXT_LABEL}', language: 'english'}}, "
        f"'{FULLTEXT_PROPERTY}')"
    )
    return out


def create_indexes(execute: Callable[[str], Any], dimension: int | None) -> None:
    """Create the indexes that do not exist yet (FalkorDB refuses a second one: ignored)."""
    for statement in index_statements(dimension):
        try:
            execute(statement)
        except Exception as exc:  # noqa: BLE001 - "already indexed" is the expected refusal
            if "already indexed" not in str(exc) and "already exists" not in str(exc):
                raise
