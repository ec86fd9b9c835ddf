"""The sessions interface: conversations, the memories in them and their order.

Owns the ``SessionStore`` protocol an engine implements (``storage/embedded/`` is one).
A session belongs to one agent; each memory stored into it has a position (1, 2, ...)
in the order it was stored. Times are aware UTC.

May import: ``casegraph.domain.models`` (the records).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from casegraph.domain.models import Memory, Session

# (memory id, session id, position, session start, session ended) of a memory in a session
# that mentions a node (``SessionStore.session_mentions``).
SessionMention = tuple[str, str, int, datetime | None, bool]
# (memory id, position, content, metadata) of a memory at the end of a session.
SessionLine = tuple[str, int, str, dict[str, Any]]


class SessionStore(Protocol):
    """Sessions: their start and end, their memories in order, and what they mention."""

    def create_session(self, session: Session) -> None:
        """Store a new session (linked to its customer, when it has one)."""
        ...

    def end_session(self, session_id: str, ended_at: datetime, summary: str | None) -> None:
        """Mark a session ended at ``ended_at`` with an optional summary."""
        ...

    def get_session(self, session_id: str) -> Session | None:
        """One session with its memory count, or None."""
        ...

    def get_sessions(self, ids: Sequence[str]) -> dict[str, Session]:
        """Several sessions by id (those that exist)."""
        ...

    def list_sessions(
        self, agent_id: str, *, customer_id: str | None = None, active_only: bool = False,
        limit: int = 100, offset: int = 0,
    ) -> list[Session]:
        """The agent's sessions (of one customer, given or learned; open ones only),
        newest first, one page."""
        ...

    def session_memories(
        self, session_id: str, now: datetime, *, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        """A session's live memories in their order, one page."""
        ...

    def session_tail(self, session_id: str, after: int, limit: int, now: datetime) -> list[SessionLine]:
        """The last ``limit`` live memories of a session after position ``after``, in order."""
        ...

    def session_mentions(self, agent_id: str, kind: str, key: str, limit: int) -> list[SessionMention]:
        """The memories in a session that mention the order, ticket or entity
        (``kind:key``) ``key``, at most ``limit``."""
        ...

    def session_summary_memory(self, session_id: str) -> str | None:
        """The id of the memory that summarises a session, if it was ended with one."""
        ...

    def idle_sessions(self, idle_since: datetime, limit: int) -> list[str]:
        """Open sessions started at or before ``idle_since`` with no memory after it,
        oldest first."""
        ...

    def sessions_live_memories(
        self, agent_id: str, session_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Memory]]:
        """Session id -> the agent's live memories in it, in the order they were stored."""
        ...

    def sessions_summaries(self, agent_id: str, session_ids: Sequence[str]) -> dict[str, str]:
        """Session id -> the id of its newest summary memory, for the sessions that have one."""
        ...

    def sessions_memories(self, session_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories (and summaries) of these sessions."""
        ...
