"""The memories interface: what the domain asks of the store that keeps memories.

Owns the record types of the write path (``MemoryRecord``), of ranking (``Attrs``,
``Columns``) and the ``Transaction`` a write runs in, and the ``MemoryStore`` and
``StoreMaintenance`` protocols an engine implements (``storage/embedded/`` is one).
Memories belong to one agent (``agent_id``); ids are global keys. Times are aware UTC.

May import: ``casegraph.domain.models`` (the records) and numpy (the embedding type).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
from casegraph.domain.models import Entity, Memory, RecallFilter, Session


class Attrs(NamedTuple):
    """What ranking needs of a memory besides its text signals (a few cheap columns)."""

    importance: float
    created_at: datetime
    expires_at: datetime | None
    superseded_by: str | None = None
    kind: str | None = None


class Columns(NamedTuple):
    """``MemoryStore.cached_columns``: per asked key, whether it is held and its attributes
    (times in microseconds since the epoch, ``micros``; ``NO_TIME`` for no expiry)."""

    known: np.ndarray  # bool
    importance: np.ndarray  # float64
    created_us: np.ndarray  # int64
    expires_us: np.ndarray  # int64
    superseded: np.ndarray  # bool


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# ``Columns.expires_us`` of a memory that never expires.
NO_TIME = np.iinfo(np.int64).min


def micros(t: datetime) -> int:
    """``t`` in microseconds since the epoch, as ``Columns`` holds times."""
    return (t - _EPOCH) // _US


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """Everything the write path hands the store for one memory."""

    memory: Memory
    embedding: np.ndarray
    customer_ids: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()
    others: tuple[Entity, ...] = ()
    # The customer this store names for its session, which had none when the store was
    # validated (the write path passes it to ``write_memories(learns=...)``).
    learns_customer: str | None = None
    # Links between the nodes it names, as the domain derives them (app/domain/records.py
    # ``with_node_links``): (customer, order) placed, (customer, ticket) raised, (ticket,
    # order) the ticket concerns.
    placed: tuple[tuple[str, str], ...] = ()
    raised: tuple[tuple[str, str], ...] = ()
    concerns: tuple[tuple[str, str], ...] = ()
    # A ticket this memory is the first to name takes its subject and channel from here.
    ticket_subject: str = ""
    ticket_channel: str | None = None


class Transaction(Protocol):
    """One write transaction, open while the domain's ``after`` step runs.

    The domain does not run statements in it: it hands it to the store's write functions
    (hygiene's states, reinforcements, supersessions, summaries), which report what they
    change here so the store's caches stay exact.
    """

    def attrs_written(self, agent_id: str, attrs: dict[str, Attrs]) -> None:
        """These memories have exactly these attributes once the transaction commits."""
        ...

    def attrs_changed(self, ids: Iterable[str]) -> None:
        """The transaction changes (or deletes) these memories' ranking attributes."""
        ...


# A step run last inside a write's transaction (``MemoryStore.write_memories(after=...)``).
AfterWrite = Callable[[Transaction], None]


class MemoryStore(Protocol):
    """Memories: their writes, reads by id, page and filter, and ranking attributes."""

    def write_memories(
        self,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session] = (),
        after: AfterWrite | None = None,
        *,
        replace: bool = False,
        learns: Sequence[tuple[str, str, str]] = (),
        agents: Sequence[str] = (),
    ) -> None:
        """Create memories, their nodes and links (and ``sessions`` not stored yet) in one
        transaction; ``after`` runs last inside it. ``replace``: each memory exists and is
        written anew (MemoryNotFound if not). ``learns``: (agent, session id, customer id)
        of sessions that learn their customer with this write. ``agents``: the agents the
        write's stores came from, which ``after`` may write to even when no record is left
        (an engine with a transaction per agent needs them)."""
        ...

    def writing(self, agent_ids: Sequence[str]) -> contextlib.AbstractContextManager[None]:
        """Hold these agents for one planned write: from before its plan is read (which
        memories a new one duplicates or supersedes) to its commit, no other ``writing``
        block on them runs, in this process or another sharing the store. So the plan is
        still true when it lands: two processes storing one near-duplicate at once make
        one memory, not two. ``write_memories`` on these agents inside it waits for nothing."""
        ...

    def delete_memories(self, agent_id: str, ids: Sequence[str]) -> list[str]:
        """Delete memories with their links and the aliases learned from them; return the
        ids that existed."""
        ...

    def get_memories(self, agent_id: str, ids: Sequence[str]) -> dict[str, Memory]:
        """The agent's memories among ``ids``, by id (expired ones included)."""
        ...

    def orders_memories(self, agent_id: str, order_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Order id -> the live memories that mention it (or are tagged with it), oldest first."""
        ...

    def existing_memory_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` that are stored, for any agent."""
        ...

    def expired_memory_ids(self, now: datetime) -> list[tuple[str, str]]:
        """(agent id, memory id) of every memory expired at ``now``."""
        ...

    def agent_memories(
        self, agent_id: str, now: datetime, *, after: tuple[datetime, str] | None = None, limit: int = 500
    ) -> list[Memory]:
        """One page of an agent's live memories, oldest first, after (created_at, id)."""
        ...

    def embeddings(self, agent_id: str, ids: Sequence[str]) -> np.ndarray:
        """The stored embeddings of ``ids``, in their order (float32 rows)."""
        ...

    def memory_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """The ranking attributes of each existing memory among ``ids``."""
        ...

    def cached_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """``memory_attrs`` for the ids the store holds in memory (no lookups)."""
        ...

    def cached_columns(self, agent_id: str, keys: np.ndarray) -> Columns:
        """``cached_attrs`` by memory keys (``vector_key``), as arrays."""
        ...

    def filtered_attrs(
        self,
        agent_id: str,
        flt: RecallFilter,
        now: datetime,
        limit: int,
    ) -> dict[str, Attrs] | None:
        """Every live memory the filter allows, with its ranking attributes, or None when
        there are more than ``limit``."""
        ...

    def filter_ids(self, agent_id: str, ids: Sequence[str], flt: RecallFilter, now: datetime) -> set[str]:
        """The subset of ``ids`` that passes the filter (and is live)."""
        ...

    def memory_priors(
        self, agent_id: str, now: datetime, min_importance: float = 0.0
    ) -> list[tuple[str, float, datetime]]:
        """(id, importance, created_at) of the agent's live memories at or above ``min_importance``."""
        ...

    def memory_texts(self, agent_id: str, ids: Sequence[str]) -> Iterator[tuple[str, str, list[str]]]:
        """(id, content, tags) of each existing memory among ``ids`` (what keywords index)."""
        ...

    def load_attrs(self) -> dict[str, set[str]]:
        """Load every memory's ranking attributes into memory; return each agent's ids."""
        ...

    def all_memory_ids(self) -> dict[str, set[str]]:
        """Every stored memory id, by agent."""
        ...

    def count_memories(self, agent_id: str | None = None) -> int:
        """Stored memories of one agent, or of all."""
        ...

    def count_memories_by_agent(self) -> dict[str, int]:
        """Stored memories per agent."""
        ...


class StoreMaintenance(Protocol):
    """The store as a whole: its schema version, settings it keeps, backups, closing."""

    @property
    def schema_version(self) -> str:
        """The name of the last migration applied ("" for none)."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A value the store keeps for the server (e.g. the embedding space), or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``."""
        ...

    def frozen(self) -> contextlib.AbstractContextManager[Path]:
        """Hold off writers until exit; the yielded path alone is then a complete copy."""
        ...

    def close(self) -> None:
        """Close the store; closing twice is harmless."""
        ...
