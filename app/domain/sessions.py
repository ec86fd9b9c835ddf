"""Sessions on the write path: start, end (with the summary memory), the idle sweep, reads.

``SessionLifecycle`` is a part of ``MemoryService`` (app/domain/memory.py): ending a session
stores its summary as a memory through the same write path, so the two share the graph,
the hygiene store, validation and the change listeners.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from casegraph.domain import consolidation
from casegraph.domain.models import Memory, Session, StoreRequest
from casegraph.domain.validation import (
    check_agent_id,
    check_customer_id,
    check_metadata,
    check_object_id,
    check_page,
    check_text,
)
from casegraph.errors import ContentTooLarge, InvalidInput, SessionEnded, SessionNotFound
from casegraph.storage.memories import MemoryRecord

if TYPE_CHECKING:
    import threading

    from casegraph.domain.memory import WriteGraph
    from casegraph.domain.pii import Redactor
    from casegraph.ops.settings import Settings
    from casegraph.storage.hygiene import HygieneStore


class SessionLifecycle:
    """The session operations of ``MemoryService``, which provides the attributes below and
    the write path's ``_prepare``, ``_records``, ``_index`` and ``notify_changed``."""

    settings: Settings
    graph: WriteGraph
    hygiene_store: HygieneStore
    redactor: Redactor
    clock: Callable[[], datetime]
    _ending: threading.Lock

    def end_idle_sessions(self, now: datetime | None = None, *, limit: int = 500) -> list[str]:
        """End the sessions idle for ``session_idle_minutes`` at ``now`` (the service
        clock by default; none when the setting is 0) as ``session_end`` does, summary
        memory included; return their ids.

        Idle: started that long ago, and no memory of it created since. Bots rarely end
        their sessions, and an ended session is what consolidation and recall's
        outcomes (app/domain/threads.py) read. A session a client ends meanwhile is skipped.
        """
        minutes = self.settings.session_idle_minutes
        if minutes <= 0:
            return []
        now = now or self.clock()
        ended = []
        for session_id in self.graph.idle_sessions(now - timedelta(minutes=minutes), limit):
            try:
                self.session_end(session_id, idle=True)
            except SessionEnded:
                continue
            ended.append(session_id)
        return ended

    def session_start(
        self, agent_id: str, customer_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Session:
        session = Session(
            id=str(uuid.uuid4()),
            agent_id=check_agent_id(agent_id),
            started_at=self.clock(),
            customer_id=check_customer_id(customer_id),
            metadata=self.redactor.json(check_metadata(metadata)),
        )
        self.graph.create_session(session)
        return session

    def session_end(
        self,
        session_id: str,
        summary: str | None = None,
        *,
        agent_id: str | None = None,
        consolidate: bool = True,
        idle: bool = False,
    ) -> Session:
        """End a session. With ``consolidate`` (the default) its summary becomes a memory:
        the caller's ``summary`` if given, else an extractive one (consolidation.py) when
        the session holds two or more memories. ``idle``: ended by the idle sweep (the
        summary's metadata says so)."""
        with self._ending:  # a client's end and the idle sweep's: one summary, not two
            return self._end_session(session_id, summary, agent_id=agent_id, consolidate=consolidate, idle=idle)

    def _end_session(
        self, session_id: str, summary: str | None, *, agent_id: str | None, consolidate: bool, idle: bool
    ) -> Session:
        session = self.session_get(session_id, agent_id=agent_id)
        if session.ended_at is not None:
            raise SessionEnded(f"session {session_id!r} has already ended")
        if summary is not None:
            if not isinstance(summary, str):
                raise InvalidInput("summary must be a string", code="INVALID_SUMMARY")
            summary = summary.strip() or None
            if summary is not None and len(summary) > self.settings.max_content_chars:
                raise ContentTooLarge(
                    f"summary has {len(summary)} characters; the limit is {self.settings.max_content_chars}"
                )
            if summary is not None:
                summary = self.redactor.text(check_text(summary, "summary"))
        ended_at = self.clock()
        record = self._summary_record(session, summary, ended_at, idle=idle) if consolidate else None
        if record is None:
            self.graph.end_session(session_id, ended_at, summary)
        else:
            text = record.memory.content
            self.graph.write_memories(
                [record], after=lambda tx: self.hygiene_store.write_summary(tx, record.memory.id, session_id, ended_at, text)
            )
            self._index([record])
            self.notify_changed()
        return self.session_get(session_id)

    def _summary_record(
        self, session: Session, summary: str | None, ended_at: datetime, *, idle: bool = False
    ) -> MemoryRecord | None:
        """The summary memory of a session about to end, or None when there is nothing to say."""
        memories = self.graph.session_memories(session.id, ended_at)
        if summary is None:
            embeddings = self.hygiene_store.session_embeddings(session.id, [m.id for m in memories])
            found = consolidation.summarise(memories, embeddings)
            if found is None:
                return None
            text, importance = found.text, found.importance
        else:
            text, importance = summary, max((m.importance for m in memories), default=0.5)
        customers = dict.fromkeys(c for c in (session.customer_id, *(m.customer_id for m in memories)) if c)
        tags = [f"customer:{c}" for c in list(customers)[:10]]
        tags += [f"order:{o}" for o in dict.fromkeys(o for m in memories for o in m.orders)][:15]
        tags += [f"ticket:{t}" for t in dict.fromkeys(t for m in memories for t in m.tickets)][:15]
        request = StoreRequest(
            agent_id=session.agent_id,
            content=text[: self.settings.max_content_chars],
            importance=importance,
            tags=(*tags, "session-summary"),
            memory_type="semantic",
            metadata={
                "summaryOf": session.id, "sources": [m.id for m in memories][:100],
                **({"endedBy": "idle"} if idle else {}),
            },
            created_at=memories[-1].created_at if memories else ended_at,
        )
        prepared = self._prepare(request, ended_at, {}, allow_ended_sessions=False)
        prepared = replace(prepared, memory=replace(prepared.memory, kind="summary"))
        return self._records([prepared])[0]

    def session_get(self, session_id: str, *, agent_id: str | None = None) -> Session:
        check_object_id(session_id, "sessionId")
        session = self.graph.get_session(session_id)
        if session is None or (agent_id is not None and session.agent_id != agent_id):
            raise SessionNotFound(f"session {session_id!r} does not exist")
        return session

    def session_memories(
        self, session_id: str, *, agent_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        """A session's memories, oldest first; ``limit``/``offset`` page through them."""
        check_page(limit, offset)
        self.session_get(session_id, agent_id=agent_id)
        return self.graph.session_memories(session_id, self.clock(), limit=limit, offset=offset)

    def list_sessions(
        self, agent_id: str, *, active_only: bool = False, limit: int = 50, offset: int = 0
    ) -> list[Session]:
        """An agent's sessions, newest first."""
        check_agent_id(agent_id)
        check_page(limit, offset)
        return self.graph.list_sessions(agent_id, active_only=active_only, limit=limit, offset=offset)
