"""The search interface: how recall finds memories, by meaning, by words and by links.

Owns the records recall passes and gets back (``NodeRefs``, ``GraphLink``, ``VectorHit``,
``ReconcileReport``),
the memory key every index shares (``vector_key``), and the protocols an engine
implements (``storage/embedded/`` is one):

- ``VectorIndex``: nearest memories by embedding, per agent;
- ``KeywordSearch``: memories by BM25 over their words, per agent;
- ``GraphSearch``: memories linked to the customers, orders, tickets and entities a
  query names, and those that share them.

May import: ``casegraph.domain.models`` (the records) and numpy (the vector type).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

# (agent id, memory keys) -> {key: memory id} for the keys the vector index knows
# (``VectorIndex.ids_of``).
KeyIds = Callable[[str, Sequence[int]], dict[int, str]]


def vector_key(memory_id: str) -> int:
    """A memory's stable 63-bit key (a UUID's top bits), shared by every index."""
    digits = memory_id.replace("-", "")
    if len(digits) == 32:
        # What uuid.UUID parses, for the usual spelling, at a third of its cost (recall
        # keys a few hundred ids a query); anything else takes the full parse below.
        with contextlib.suppress(ValueError):
            return int(digits, 16) >> 65
    try:
        return uuid.UUID(memory_id).int >> 65
    except ValueError:
        return int.from_bytes(hashlib.blake2b(memory_id.encode(), digest_size=8).digest()) >> 1


@dataclass(frozen=True, slots=True)
class NodeRefs:
    """Graph nodes a recall query names (resolved from its entities)."""

    customers: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()  # (kind, key)

    def __bool__(self) -> bool:
        return bool(self.customers or self.orders or self.tickets or self.entities)


@dataclass(slots=True)
class GraphLink:
    """How strongly a memory is linked to what a query names, and why (shown to users)."""

    strength: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VectorHit:
    memory_id: str
    similarity: float


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What bringing an index (vectors or keywords, a cache of the graph) back in line with
    the graph did: the agents it covered, the memory ids added and removed."""

    agents: int
    added: int
    removed: int


# The paths from a memory to a node a query names (``GraphSearch.hop_memories``), by the
# kind of that node; app/domain/links.py says how strong each is and what it shows.
LINK_PATHS = {
    "customer": ("about_customer",),
    "order": ("mentions_order", "ticket_about_order", "customer_placed_order"),
    "ticket": ("mentions_ticket", "order_of_ticket", "ticket_on_same_order", "customer_raised_ticket"),
    "entity": ("mentions_entity", "customer_mentioned_entity"),
}


class GraphSearch(Protocol):
    """What recall asks of the graph."""

    def resolve(self, agent_id: str, refs: NodeRefs) -> NodeRefs:
        """Keep only the referenced nodes that exist for this agent."""
        ...

    def hop_memories(self, agent_id: str, hop: str, node_keys: Sequence[str]) -> list[tuple[str, str]]:
        """(memory id, label) of the memories the path ``hop`` (one of ``LINK_PATHS``) leads
        to from each of the agent's named nodes ``node_keys`` (order, ticket or customer
        ids, or entities' ``kind:key``), each once a node, the nodes' rows in the order of
        ``node_keys``. The label names what the path went through (recall's reasons show it)."""
        ...

    def associated_memories(
        self, agent_id: str, seed_ids: Sequence[str], *, max_depth: int, limit: int, now: datetime
    ) -> list[tuple[str, int]]:
        """(id, depth) of live memories that share a customer, order or ticket with the
        seeds, hop by hop, nearest and newest first."""
        ...

    def settled_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> its ticket, for memories that mention only a resolved or closed one."""
        ...


class VectorIndex(Protocol):
    """Per-agent nearest-neighbour search over memory embeddings (a cache of the graph's)."""

    def add(self, agent_id: str, memory_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Index these memories' vectors (replacing what they had)."""
        ...

    def remove(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        """Drop these memories; return how many were held."""
        ...

    def search(self, agent_id: str, query: np.ndarray, count: int) -> list[VectorHit]:
        """The ``count`` nearest memories to ``query``, nearest first."""
        ...

    def ids_of(self, agent_id: str, keys: Sequence[int]) -> dict[int, str]:
        """The memory ids of these keys (``vector_key``), of those the index holds."""
        ...

    def similarities(
        self, agent_id: str, memory_ids: Sequence[str], query: np.ndarray, *, keys: np.ndarray | None = None
    ) -> dict[str, float]:
        """Cosine similarity of ``query`` to each held memory's vector."""
        ...

    def reconcile(
        self, graph_ids: dict[str, set[str]], load_vectors: Callable[[str, list[str]], Any]
    ) -> ReconcileReport:
        """Make every agent's index hold exactly ``graph_ids`` (loading missing vectors)."""
        ...

    def save(self) -> None:
        """Persist what changed."""
        ...


def document_text(content: str, tags: Iterable[str]) -> str:
    """What a memory is indexed by for keyword search: its content and its tags."""
    return " ".join((content, *tags))


class KeywordSearch(Protocol):
    """Per-agent full-text (BM25) search over memory texts."""

    def add(self, agent_id: str, docs: Sequence[tuple[str, str]], *, flush: bool = True) -> None:
        """Index (memory id, text) pairs, replacing what a memory id had."""
        ...

    def delete(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        """Remove memories; return how many were held."""
        ...

    def search(self, agent_id: str, text: str, limit: int) -> list[tuple[str, float]]:
        """(memory id, score) of the memories matching ``text``, best first."""
        ...

    def reconcile(
        self, graph_ids: dict[str, set[str]], load_texts: Callable[[str, list[str]], Iterable[tuple[str, str]]]
    ) -> ReconcileReport:
        """Make every agent's index hold exactly ``graph_ids`` (loading missing texts)."""
        ...

    def close(self) -> None:
        """Commit and close."""
        ...
