"""The hygiene interface: what memory hygiene, session summaries and customer context ask of storage.

Owns the records hygiene reads (``Neighbour``, ``StatefulMemory``) and writes
(``Reinforcement``, ``Supersession``), the customer-context record ``TicketActivity``, and
the ``HygieneStore`` and ``CustomerContextStore`` protocols an engine implements
(``storage/embedded/hygiene.py`` is one). The domain decides (app/domain/hygiene.py); the
store reads candidates and writes decisions. Writes take the write path's open
``Transaction`` (``MemoryStore.write_memories(after=...)``), so they commit together with the
memories they belong to: the domain hands the transaction on, it never runs statements in it.

May import: ``casegraph.domain.models`` (the records) and the memories interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from casegraph.domain.models import Entity
from casegraph.storage.memories import Transaction


@dataclass(frozen=True, slots=True)
class Neighbour:
    """An existing memory a new store may duplicate."""

    id: str
    content: str
    embedding: np.ndarray
    memory_type: str
    entities: tuple[Entity, ...]
    states: tuple[str, ...]
    importance: float
    reinforce_count: int
    created_at: datetime
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class StatefulMemory:
    """An existing, current memory that states something about orders or tickets."""

    id: str
    states: tuple[str, ...]
    created_at: datetime
    orders: frozenset[str]
    tickets: frozenset[str]


@dataclass(frozen=True, slots=True)
class Reinforcement:
    """A near-duplicate store reinforced this memory: its new importance, when it was last
    seen, and how many stores it absorbed."""

    memory_id: str
    importance: float
    last_seen_at: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Supersession:
    older_id: str
    newer_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TicketActivity:
    """A customer's ticket as wake-up context sees it."""

    id: str
    status: str | None
    last_activity_at: datetime | None
    latest_states: tuple[str, ...]
    latest_memory_id: str | None


class HygieneStore(Protocol):
    """Reads of the candidates hygiene compares a batch with, and writes of its decisions."""

    def dedup_neighbours(
        self,
        agent_id: str,
        customer_ids: Sequence[str],
        now: datetime,
        limit: int = 2000,
        *,
        near: Mapping[str, np.ndarray] | None = None,
        min_similarity: float | None = None,
    ) -> dict[str, list[Neighbour]]:
        """Per customer: its current, non-expiring, ordinary memories (not summaries), most
        recent first, at most ``limit``.

        ``near`` (per customer, the unit embeddings of the memories about to be stored) and
        ``min_similarity``: only those of them at least that similar (cosine) to one of
        ``near`` can be duplicates. An engine may leave the others out (the planner compares
        what it gets again, so one that cannot filter cheaply returns them all); one that
        filters keeps a margin for its own arithmetic."""
        ...

    def stateful_neighbours(
        self, agent_id: str, orders: Sequence[str], tickets: Sequence[str], now: datetime
    ) -> list[StatefulMemory]:
        """Current, unexpired memories with state statements about any of these orders or
        tickets (each with every order and ticket it mentions)."""
        ...

    def memory_session(self, agent_id: str, memory_id: str) -> str | None:
        """The session the agent's memory was stored in (None: none, or no such memory)."""
        ...

    def session_embeddings(self, session_id: str, ids: Sequence[str]) -> np.ndarray:
        """The embeddings of these memories of the session, in their order."""
        ...

    def write_hygiene(
        self,
        tx: Transaction,
        states: dict[str, tuple[str, ...]],
        reinforcements: Sequence[Reinforcement],
        supersessions: Sequence[Supersession],
        now: datetime,
    ) -> None:
        """In the write's transaction: the memories' state statements, the reinforced
        memories' new importance and counts, and which memories newer ones supersede."""
        ...

    def write_summary(self, tx: Transaction, memory_id: str, session_id: str, ended_at: datetime, summary: str) -> None:
        """In the write's transaction: mark the memory as the session's summary and end the session."""
        ...


class CustomerContextStore(Protocol):
    """What wake-up context reads of one customer."""

    def customer_ticket_activity(self, agent_id: str, customer_id: str, now: datetime) -> list[TicketActivity]:
        """The customer's tickets: stored status, last activity, newest (current if any) memory."""
        ...
