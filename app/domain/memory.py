"""The write path: validate -> extract -> embed -> hygiene -> graph (one transaction) -> vectors, keywords.

A store is acknowledged only after Kùzu has committed it; the vector index is updated
afterwards and is reconciled from the graph at start-up, so an acknowledged memory is
never lost. A batch is validated whole before anything is written and written in one
transaction: it is stored entirely or not at all.

The checks every entry point shares are in validation.py; what a prepared request becomes
(entities, nodes, their links) in records.py; the session operations ``MemoryService``
offers (start, end with a summary memory, the idle sweep) in sessions.py.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from casegraph.domain.clock import Clock, utcnow
from casegraph.domain.embedder import Embedder
from casegraph.domain.hygiene import HygieneConfig, HygienePlan, HygienePlanner
from casegraph.domain.models import (
    Memory,
    Session,
    StoreRequest,
    is_live,
)
from casegraph.domain.pii import Redactor
from casegraph.domain.records import Prepared, memory_record, merged, with_known_ids
from casegraph.domain.sessions import SessionLifecycle
from casegraph.domain.validation import (
    MAX_TTL_SECONDS,
    as_utc,
    check_agent_id,
    check_customer_id,
    check_importance,
    check_memory_type,
    check_metadata,
    check_object_id,
    check_tags,
    check_text,
    check_ticket_id,
    link_keys,
)
from casegraph.domain.writer import GroupCommitter
from casegraph.errors import (
    BatchTooLarge,
    CaseGraphError,
    Conflict,
    ContentEmpty,
    ContentTooLarge,
    InvalidDate,
    InvalidInput,
    MemoryExists,
    MemoryNotFound,
    NotFound,
    SessionEnded,
    SessionNotFound,
)
from casegraph.extractors import (
    normalise_order_key,
    normalise_ticket_key,
    parse_tags,
)
from casegraph.ops.settings import Settings
from casegraph.storage.hygiene import HygieneStore
from casegraph.storage.memories import MemoryRecord, MemoryStore
from casegraph.storage.search import (
    GraphSearch,
    KeywordSearch,
    VectorIndex,
    document_text,
)
from casegraph.storage.sessions import SessionStore

log = logging.getLogger("casegraph.memory")



class WriteGraph(MemoryStore, SessionStore, GraphSearch, Protocol):
    """The graph as the write path uses it: memories, their sessions, and the identifiers
    it already knows (one engine implements all three)."""


class MemoryService(SessionLifecycle):
    """store / store_batch / update / forget, and sessions (``SessionLifecycle``)."""

    def __init__(
        self,
        settings: Settings,
        graph: WriteGraph,
        vectors: VectorIndex,
        embedder: Embedder,
        extractor: Any,
        clock: Clock = utcnow,
        *,
        keywords: KeywordSearch,
        hygiene: HygieneStore,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.vectors = vectors
        self.keywords = keywords
        self.embedder = embedder
        self.extractor = extractor
        self.clock = clock
        # PII is redacted in _prepare, before extraction, embedding or the graph see it.
        self.redactor = Redactor.from_settings(settings)
        self._extract_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract")
        # Embedding of the next round overlaps the commit of this one (see app/domain/writer.py).
        self._writer: GroupCommitter[Prepared, Memory] = GroupCommitter(
            self._commit, prepare=self._records, max_items=settings.max_batch_size
        )
        self.hygiene_store = hygiene
        self.hygiene = HygienePlanner(
            hygiene, HygieneConfig(settings.dedup_threshold, settings.dedup_importance_boost)
        )
        self._ending = threading.Lock()
        # Called after every committed change (stores, forgets, sweeps): the ticket
        # service recomputes the relations of the tickets the change touched.
        self.listeners: list[Callable[[], object]] = []

    def notify_changed(self) -> None:
        """Run the change listeners (after a committed change to memories)."""
        for listener in self.listeners:
            try:
                listener()
            except Exception:  # the change is committed; listeners catch up later
                log.exception("a change listener failed; it will catch up on the next change")

    # -- store ----------------------------------------------------------------------
    def store(self, request: StoreRequest) -> Memory:
        return self.store_batch([request])[0]

    def store_batch(
        self,
        requests: Sequence[StoreRequest],
        *,
        sessions: Sequence[Session] = (),
        allow_ended_sessions: bool = False,
        hygiene: bool = True,
    ) -> list[Memory]:
        """Store all of ``requests`` or none of them; return them in request order.

        ``hygiene=False`` (imports) stores every memory as given: no near-duplicate
        reinforcement or supersession, so an export imports back exactly.

        For importing history: ``sessions`` are created in the same transaction as the
        memories (those that exist already are kept as they are), and
        ``allow_ended_sessions`` lets memories join sessions that have ended.
        """
        self._check_batch_size(requests)
        now = self.clock()
        cache, new_sessions, session_errors = self._import_sessions(sessions)
        if session_errors:
            raise next(iter(session_errors.values()))
        prepared = []
        for i, outcome in enumerate(self._prepare_all(requests, now, cache, allow_ended_sessions)):
            if isinstance(outcome, CaseGraphError):
                if len(requests) == 1:
                    raise outcome
                raise type(outcome)(f"inputs[{i}]: {outcome.message}", code=outcome.code) from outcome
            prepared.append(outcome)

        if new_sessions or not hygiene:
            # An import commits its sessions with its memories, on its own.
            return self._write(prepared, new_sessions, hygiene=hygiene)
        return self._writer.submit(prepared)

    def _write(
        self, prepared: Sequence[Prepared], new_sessions: Sequence[Session] = (), *, hygiene: bool = True
    ) -> list[Memory]:
        """Extract, embed and commit validated memories on the calling thread."""
        return self._commit(self._records(prepared), new_sessions, hygiene=hygiene)

    def _commit(
        self, records: Sequence[MemoryRecord], new_sessions: Sequence[Session] = (), *, hygiene: bool = True
    ) -> list[Memory]:
        """Hygiene, graph, vectors for extracted and embedded memories (normally on the
        writer thread, one round at a time)."""
        now = self.clock()
        agents = sorted({r.memory.agent_id for r in records})
        # The plan reads what is stored (near-duplicates, superseded states): no other
        # write of these agents may land between that read and this commit.
        with self.graph.writing(agents):
            plan = self.hygiene.plan(records, now) if hygiene else HygienePlan(fresh=list(records))
            # The commit point: acknowledged from here on. Hygiene commits with the memories.
            # A store that tells its session who the customer is does so even when its own
            # memory merges into a near-duplicate.
            learns = [(r.memory.agent_id, r.memory.session_id, r.learns_customer)
                      for r in records if r.learns_customer and r.memory.session_id]
            self.graph.write_memories(
                plan.fresh, sessions=new_sessions, after=lambda tx: self.hygiene.write(plan, tx, now),
                learns=learns, agents=agents,
            )
        self._index(plan.fresh)
        self.notify_changed()
        return self._results(records, plan)

    def close(self) -> None:
        self._writer.close()
        self._extract_pool.shutdown(wait=True)

    def check_batch(
        self,
        requests: Sequence[StoreRequest],
        *,
        sessions: Sequence[Session] = (),
        allow_ended_sessions: bool = False,
    ) -> list[tuple[int, CaseGraphError]]:
        """Validate like ``store_batch`` without writing: ``(index, error)`` per bad request.

        Lets an import report every bad line, or refuse a whole file before writing any.
        """
        self._check_batch_size(requests)
        cache, _, session_errors = self._import_sessions(sessions)
        outcomes = self._prepare_all(
            requests, self.clock(), cache, allow_ended_sessions, session_errors
        )
        return [(i, o) for i, o in enumerate(outcomes) if isinstance(o, CaseGraphError)]

    def _check_batch_size(self, requests: Sequence[StoreRequest]) -> None:
        if not requests:
            raise InvalidInput("a batch needs at least one memory", code="EMPTY_BATCH")
        if len(requests) > self.settings.max_batch_size:
            raise BatchTooLarge(
                f"a batch holds at most {self.settings.max_batch_size} memories, got {len(requests)}"
            )

    def _prepare_all(
        self,
        requests: Sequence[StoreRequest],
        now: datetime,
        sessions: dict[str, Session],
        allow_ended_sessions: bool,
        session_errors: dict[str, CaseGraphError] | None = None,
    ) -> list[Prepared | CaseGraphError]:
        """Each request prepared, or the input error that refuses it."""
        given = [r.id for r in requests if isinstance(r.id, str)]
        existing = self.graph.existing_memory_ids(given) if given else set()
        seen: set[str] = set()
        out: list[Prepared | CaseGraphError] = []
        for req in requests:
            try:
                if session_errors and req.session_id in session_errors:
                    bad = session_errors[req.session_id]
                    raise type(bad)(f"session {req.session_id!r}: {bad.message}", code=bad.code)
                p = self._prepare(req, now, sessions, allow_ended_sessions)
                if p.memory.id in seen:
                    raise InvalidInput(f"id {p.memory.id!r} is repeated in this batch", code="DUPLICATE_ID")
                if p.memory.id in existing:
                    raise MemoryExists(f"memory {p.memory.id!r} already exists")
                seen.add(p.memory.id)
                out.append(p)
            except (InvalidInput, NotFound, Conflict) as exc:
                out.append(exc)
        return out

    def _import_sessions(
        self, sessions: Sequence[Session]
    ) -> tuple[dict[str, Session], list[Session], dict[str, CaseGraphError]]:
        """Validate imported sessions: (known by id, to create, errors by id)."""
        known: dict[str, Session] = {}
        new: list[Session] = []
        errors: dict[str, CaseGraphError] = {}
        if not sessions:
            return known, new, errors
        existing = self.graph.get_sessions([s.id for s in sessions if isinstance(s.id, str)])
        for raw in sessions:
            if raw.id in known or raw.id in errors:
                continue
            try:
                session = self._check_session(raw)
            except InvalidInput as exc:
                errors[raw.id] = exc
                continue
            found = existing.get(session.id)
            if found is None:
                new.append(session)
                known[session.id] = session
            elif found.agent_id != session.agent_id:
                errors[session.id] = Conflict(
                    f"session {session.id!r} belongs to another agent", code="SESSION_CONFLICT"
                )
            else:
                known[session.id] = found  # an existing session is kept as it is
        return known, new, errors

    def _check_session(self, s: Session) -> Session:
        agent_id = check_agent_id(s.agent_id)
        check_object_id(s.id, "session id")
        started_at = as_utc(s.started_at, "session startedAt")
        ended_at = as_utc(s.ended_at, "session endedAt") if s.ended_at is not None else None
        if ended_at is not None and ended_at < started_at:
            raise InvalidDate("session endedAt lies before its startedAt")
        summary = s.summary
        if summary is not None:
            if not isinstance(summary, str):
                raise InvalidInput("session summary must be a string", code="INVALID_SUMMARY")
            if len(summary) > self.settings.max_content_chars:
                raise ContentTooLarge(
                    f"session summary has {len(summary)} characters; "
                    f"the limit is {self.settings.max_content_chars}"
                )
        return Session(
            id=s.id,
            agent_id=agent_id,
            started_at=started_at,
            customer_id=check_customer_id(s.customer_id),
            ended_at=ended_at,
            summary=self.redactor.text(check_text(summary, "session summary")) if summary else summary,
            metadata=self.redactor.json(check_metadata(s.metadata)),
        )

    def _records(self, prepared: Sequence[Prepared]) -> list[MemoryRecord]:
        """Extract and embed: pure functions of the text, so they may run ahead of commits."""
        texts = [p.memory.content for p in prepared]
        # spaCy and torch both release the GIL for most of their work: overlap them.
        extraction = self._extract_pool.submit(self.extractor.extract_many, texts)
        vectors = self.embedder.embed(texts)
        extracted = with_known_ids(self.graph, prepared, extraction.result())
        return [
            memory_record(p, found, vec) for p, found, vec in zip(prepared, extracted, vectors, strict=True)
        ]

    def _results(self, records: Sequence[MemoryRecord], plan: HygienePlan) -> list[Memory]:
        """One memory per request: the new one, or the one a near-duplicate reinforced."""
        fresh = {r.memory.id: r.memory for r in plan.fresh}
        wanted: dict[str, list[str]] = {}
        for index, target in plan.duplicate_of.items():
            if target not in fresh:
                wanted.setdefault(records[index].memory.agent_id, []).append(target)
        existing: dict[str, Memory] = {}
        for agent_id, ids in wanted.items():
            existing.update(self.graph.get_memories(agent_id, ids))
        out = []
        for index, rec in enumerate(records):
            target = plan.duplicate_of.get(index)
            if target is None:
                out.append(fresh[rec.memory.id])
            else:
                found = fresh.get(target) or existing[target]
                out.append(replace(found, deduplicated=True))
        return out

    def _prepare(
        self, req: StoreRequest, now: datetime, sessions: dict[str, Session], allow_ended_sessions: bool
    ) -> Prepared:
        agent_id = check_agent_id(req.agent_id)
        memory_id = check_object_id(req.id, "id") if req.id is not None else str(uuid.uuid4())
        if not isinstance(req.content, str) or not req.content.strip():
            raise ContentEmpty("content must not be empty")
        content = req.content.strip()
        if len(content) > self.settings.max_content_chars:
            raise ContentTooLarge(
                f"content has {len(content)} characters; the limit is {self.settings.max_content_chars}"
            )
        content = self.redactor.text(check_text(content, "content"))
        importance = check_importance(req.importance)
        tags = check_tags(req.tags)
        links = parse_tags(tags)
        orders = merged(links.orders, link_keys(req.orders, normalise_order_key, "order"))
        tickets = merged(links.tickets, link_keys(req.tickets, normalise_ticket_key, "ticket"))
        memory_type = check_memory_type(req.memory_type)
        metadata = self.redactor.json(check_metadata(req.metadata))
        customer_id = check_customer_id(req.customer_id)
        ticket_id = check_ticket_id(req.ticket_id)
        created_at = as_utc(req.created_at, "createdAt") if req.created_at is not None else now
        if created_at > now + timedelta(days=1):
            raise InvalidDate(f"createdAt {created_at.isoformat()} lies in the future")
        updated_at = as_utc(req.updated_at, "updatedAt") if req.updated_at is not None else now
        expires_at = self._expiry(req, now)

        session_id = None
        session_customer = None
        learns_customer = None
        if req.session_id is not None:
            session = self._open_session(
                agent_id, req.session_id, sessions, allow_ended_sessions or req.allow_ended_session
            )
            session_id, session_customer = session.id, session.customer_id
            if session_customer is None and customer_id is not None:
                # The bot has looked the customer up: the session and what it stored
                # before belong to them (the store's learn_sessions), as does the rest.
                learns_customer = customer_id
                sessions[session.id] = replace(session, customer_id=customer_id)

        customers: list[str] = []
        for c in (customer_id, *links.customers, session_customer):
            if c and c not in customers:
                customers.append(c)
        memory = Memory(
            id=memory_id,
            agent_id=agent_id,
            content=content,
            importance=importance,
            tags=tuple(tags),
            memory_type=memory_type,
            metadata=metadata,
            created_at=created_at,
            updated_at=updated_at,
            session_id=session_id,
            customer_id=customers[0] if customers else None,
            expires_at=expires_at,
        )
        tickets = merged(tickets, (ticket_id,) if ticket_id else ())
        return Prepared(memory, tuple(customers), orders, tickets, learns_customer)

    def _expiry(self, req: StoreRequest, now: datetime) -> datetime | None:
        if req.ttl_seconds is not None:
            ttl = req.ttl_seconds
            if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_SECONDS:
                raise InvalidInput(
                    f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}, got {req.ttl_seconds!r}",
                    code="INVALID_TTL",
                )
            return now + timedelta(seconds=req.ttl_seconds)
        if req.expires_at is not None:
            expires_at = as_utc(req.expires_at, "expiresAt")
            if expires_at <= now:
                raise InvalidDate("expiresAt must lie in the future")
            return expires_at
        return None

    def _open_session(
        self, agent_id: str, session_id: str, cache: dict[str, Session], allow_ended: bool = False
    ) -> Session:
        check_object_id(session_id, "sessionId")
        session = cache.get(session_id) or self.graph.get_session(session_id)
        if session is None or session.agent_id != agent_id:
            raise SessionNotFound(f"session {session_id!r} does not exist")
        if session.ended_at is not None and not allow_ended:
            raise SessionEnded(f"session {session_id!r} has ended; start a new session")
        cache[session_id] = session
        return session

    def _index(self, records: Sequence[MemoryRecord]) -> None:
        by_agent: dict[str, list[MemoryRecord]] = {}
        for r in records:
            by_agent.setdefault(r.memory.agent_id, []).append(r)
        for agent_id, recs in by_agent.items():
            self.vectors.add(
                agent_id, [r.memory.id for r in recs], np.stack([r.embedding for r in recs])
            )
            self.keywords.add(agent_id, [(r.memory.id, document_text(r.memory.content, r.memory.tags)) for r in recs])

    # -- read one ---------------------------------------------------------------------
    def get(self, agent_id: str, memory_id: str) -> Memory:
        check_agent_id(agent_id)
        check_object_id(memory_id, "id")
        memory = self.graph.get_memories(agent_id, [memory_id]).get(memory_id)
        if memory is None or not is_live(memory.expires_at, self.clock()):
            raise MemoryNotFound(f"memory {memory_id!r} does not exist")
        return memory

    # -- update -----------------------------------------------------------------------
    def update(
        self,
        agent_id: str,
        memory_id: str,
        *,
        content: str | None = None,
        importance: float | None = None,
        tags: Sequence[str] | None = None,
        memory_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        """Change the given fields of a memory (``tags`` and ``metadata`` replace).

        The memory keeps its id, creation time, session and expiry. It goes through the
        same validation and extraction as a store, its links to customers, orders and
        tickets are rebuilt from the new text and tags, and new content is re-embedded;
        the old and new versions swap in one graph transaction.
        """
        fields = (content, importance, tags, memory_type, metadata)
        if all(f is None for f in fields):
            raise InvalidInput("give at least one field to update", code="EMPTY_UPDATE")
        current = self.get(agent_id, memory_id)
        old_tag_customers = parse_tags(current.tags).customers
        request = StoreRequest(
            agent_id=agent_id,
            content=current.content if content is None else content,
            importance=current.importance if importance is None else importance,
            tags=current.tags if tags is None else tuple(tags),
            session_id=current.session_id,
            # A customer that came from neither the old tags nor the session was given
            # explicitly at store time: it stays (the session's is re-derived anyway).
            customer_id=None if current.customer_id in old_tag_customers else current.customer_id,
            memory_type=current.memory_type if memory_type is None else memory_type,
            metadata=current.metadata if metadata is None else metadata,
            created_at=current.created_at,
            expires_at=current.expires_at,
            allow_ended_session=True,
        )
        prepared = self._prepare(request, self.clock(), {}, allow_ended_sessions=True)
        prepared = replace(
            prepared, memory=replace(prepared.memory, id=memory_id, access_count=current.access_count)
        )
        text = prepared.memory.content
        found = with_known_ids(self.graph, [prepared], self.extractor.extract_many([text]))[0]
        if text == current.content:
            vector = self.graph.embeddings(agent_id, [memory_id])[0]
        else:
            vector = self.embedder.embed([text])[0]
        record = memory_record(prepared, found, vector)
        self.graph.write_memories([record], replace=True)
        self._index([record])
        self.notify_changed()
        return record.memory

    # -- forget -----------------------------------------------------------------------
    def forget(self, agent_id: str, memory_id: str) -> bool:
        """Remove a memory from the graph, the keyword index and the vector index."""
        self.forget_many(agent_id, [memory_id])
        return True

    def forget_many(self, agent_id: str, memory_ids: Sequence[str]) -> list[str]:
        """Remove the given memories; return the ids that existed (MemoryNotFound if none did)."""
        check_agent_id(agent_id)
        if not memory_ids:
            raise InvalidInput("give at least one memory id to forget", code="EMPTY_BATCH")
        if len(memory_ids) > self.settings.max_batch_size:
            raise BatchTooLarge(
                f"forget takes at most {self.settings.max_batch_size} ids, got {len(memory_ids)}"
            )
        for memory_id in memory_ids:
            check_object_id(memory_id, "id")
        deleted = self.graph.delete_memories(agent_id, list(dict.fromkeys(memory_ids)))
        if not deleted:
            shown = memory_ids[0] if len(memory_ids) == 1 else f"{memory_ids[0]}, ..."
            raise MemoryNotFound(f"memory {shown!r} does not exist")
        self.vectors.remove(agent_id, deleted)
        self.keywords.delete(agent_id, deleted)
        self.notify_changed()
        return deleted

    def sweep_expired(self) -> int:
        """Delete memories whose TTL has passed; return how many."""
        expired = self.graph.expired_memory_ids(self.clock())
        by_agent: dict[str, list[str]] = {}
        for agent_id, memory_id in expired:
            by_agent.setdefault(agent_id, []).append(memory_id)
        count = 0
        for agent_id, ids in by_agent.items():
            deleted = self.graph.delete_memories(agent_id, ids)
            self.vectors.remove(agent_id, deleted)
            self.keywords.delete(agent_id, deleted)
            count += len(deleted)
        if count:
            self.notify_changed()
        return count
