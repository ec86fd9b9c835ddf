"""The write path: validate -> extract -> embed -> hygiene -> graph (one transaction) -> vectors.

A store is acknowledged only after Kùzu has committed it; the vector index is updated
afterwards and is reconciled from the graph at start-up, so an acknowledged memory is
never lost. A batch is validated whole before anything is written and written in one
transaction: it is stored entirely or not at all.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from app import consolidation
from app import hygiene_store as hs
from app.embeddings import Embedder
from app.errors import (
    BatchTooLarge,
    ContentEmpty,
    ContentTooLarge,
    InvalidDate,
    InvalidId,
    InvalidImportance,
    InvalidInput,
    InvalidTag,
    MemoryNotFound,
    SessionEnded,
    SessionNotFound,
)
from app.graph import GraphStore, MemoryRecord
from app.hygiene import HygieneConfig, HygienePlan, HygienePlanner
from app.models import MEMORY_TYPES, Entity, Memory, Session, StoreRequest
from app.settings import Settings
from app.vectors import VectorStore
from extractors import InvalidTagError, normalise_customer_id, parse_tags, validate_tags

log = logging.getLogger("casegraph.memory")

Clock = Callable[[], datetime]

AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
UUID_LIKE = re.compile(r"^[0-9a-fA-F-]{1,64}$")
MAX_METADATA_BYTES = 16_384
MAX_TTL_SECONDS = 10 * 365 * 86_400
# Entity kinds that become their own node types; the rest become generic Entity nodes.
_OWN_NODES = {"order", "ticket", "customer"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not AGENT_ID.match(agent_id):
        raise InvalidId(
            f"agentId {_short(agent_id)!r} is invalid: use 1-128 letters, digits or _ . : @ - "
            "starting with a letter or digit",
            code="INVALID_AGENT_ID",
        )
    return agent_id


def check_object_id(value: str, what: str) -> str:
    """Ids we issue are UUIDs; anything else cannot exist, so say it is malformed."""
    if not isinstance(value, str) or not UUID_LIKE.match(value):
        raise InvalidId(f"{what} {_short(value)!r} is not a valid id")
    return value


def check_customer_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise_customer_id(value)
    except ValueError as exc:
        raise InvalidId(f"customerId {_short(value)!r} is invalid: {exc}", code="INVALID_CUSTOMER_ID") from exc


def check_importance(value: float, what: str = "importance") -> float:
    if not isinstance(value, int | float) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidImportance(f"{what} must be a number between 0 and 1, got {value!r}")
    return float(value)


def check_tags(tags: Sequence[str]) -> list[str]:
    try:
        return validate_tags(list(tags))
    except InvalidTagError as exc:
        raise InvalidTag(str(exc)) from exc


def check_memory_type(value: str) -> str:
    if value not in MEMORY_TYPES:
        raise InvalidInput(
            f"memoryType {_short(value)!r} is not one of {', '.join(MEMORY_TYPES)}",
            code="INVALID_MEMORY_TYPE",
        )
    return value


def as_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidDate(f"{what} must be a date-time, got {_short(value)!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A validated store request plus what it links to (before extraction)."""

    memory: Memory
    customers: tuple[str, ...]
    tag_orders: tuple[str, ...]
    tag_tickets: tuple[str, ...]


class MemoryService:
    """store / store_batch / forget / sessions."""

    def __init__(
        self,
        settings: Settings,
        graph: GraphStore,
        vectors: VectorStore,
        embedder: Embedder,
        extractor: Any,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.vectors = vectors
        self.embedder = embedder
        self.extractor = extractor
        self.clock = clock
        self.hygiene = HygienePlanner(
            graph, HygieneConfig(settings.dedup_threshold, settings.dedup_importance_boost)
        )

    # -- store ----------------------------------------------------------------------
    def store(self, request: StoreRequest) -> Memory:
        return self.store_batch([request])[0]

    def store_batch(self, requests: Sequence[StoreRequest]) -> list[Memory]:
        """Store all of ``requests`` or none of them; return them in request order.

        A near-duplicate (hygiene.py) is not created: its place in the answer holds the
        memory it reinforced, flagged ``deduplicated``.
        """
        if not requests:
            raise InvalidInput("a batch needs at least one memory", code="EMPTY_BATCH")
        if len(requests) > self.settings.max_batch_size:
            raise BatchTooLarge(
                f"a batch holds at most {self.settings.max_batch_size} memories, got {len(requests)}"
            )
        now = self.clock()
        sessions: dict[str, Session] = {}
        prepared = []
        for i, req in enumerate(requests):
            try:
                prepared.append(self._prepare(req, now, sessions))
            except InvalidInput as exc:
                if len(requests) == 1:
                    raise
                raise type(exc)(f"inputs[{i}]: {exc.message}", code=exc.code) from exc
            except (SessionNotFound, SessionEnded) as exc:
                if len(requests) == 1:
                    raise
                raise type(exc)(f"inputs[{i}]: {exc.message}", code=exc.code) from exc

        records = self._records(prepared)
        plan = self.hygiene.plan(records, now)
        # The commit point: acknowledged from here on. Hygiene commits with the memories.
        self.graph.write_memories(plan.fresh, after=lambda run: plan.apply(run, now))
        self._index(plan.fresh)
        return self._results(records, plan)

    def _records(self, prepared: Sequence[_Prepared]) -> list[MemoryRecord]:
        texts = [p.memory.content for p in prepared]
        extracted = self.extractor.extract_many(texts)
        vectors = self.embedder.embed(texts)
        return [
            self._record(p, found, vec) for p, found, vec in zip(prepared, extracted, vectors, strict=True)
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

    def _prepare(self, req: StoreRequest, now: datetime, sessions: dict[str, Session]) -> _Prepared:
        agent_id = check_agent_id(req.agent_id)
        if not isinstance(req.content, str) or not req.content.strip():
            raise ContentEmpty("content must not be empty")
        content = req.content.strip()
        if len(content) > self.settings.max_content_chars:
            raise ContentTooLarge(
                f"content has {len(content)} characters; the limit is {self.settings.max_content_chars}"
            )
        if "\x00" in content:
            raise InvalidInput("content must not contain NUL characters", code="INVALID_CONTENT")
        importance = check_importance(req.importance)
        tags = check_tags(req.tags)
        links = parse_tags(tags)
        memory_type = check_memory_type(req.memory_type)
        metadata = _check_metadata(req.metadata)
        customer_id = check_customer_id(req.customer_id)
        created_at = as_utc(req.created_at, "createdAt") if req.created_at is not None else now
        if created_at > now + timedelta(days=1):
            raise InvalidDate(f"createdAt {created_at.isoformat()} lies in the future")
        expires_at = self._expiry(req, now)

        session_id = None
        session_customer = None
        if req.session_id is not None:
            session = self._open_session(agent_id, req.session_id, sessions)
            session_id, session_customer = session.id, session.customer_id

        customers: list[str] = []
        for c in (customer_id, *links.customers, session_customer):
            if c and c not in customers:
                customers.append(c)
        memory = Memory(
            id=str(uuid.uuid4()),
            agent_id=agent_id,
            content=content,
            importance=importance,
            tags=tuple(tags),
            memory_type=memory_type,
            metadata=metadata,
            created_at=created_at,
            updated_at=now,
            session_id=session_id,
            customer_id=customers[0] if customers else None,
            expires_at=expires_at,
        )
        return _Prepared(memory, tuple(customers), tuple(links.orders), tuple(links.tickets))

    def _expiry(self, req: StoreRequest, now: datetime) -> datetime | None:
        if req.ttl_seconds is not None:
            if not isinstance(req.ttl_seconds, int) or not 0 < req.ttl_seconds <= MAX_TTL_SECONDS:
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

    def _open_session(self, agent_id: str, session_id: str, cache: dict[str, Session]) -> Session:
        check_object_id(session_id, "sessionId")
        session = cache.get(session_id) or self.graph.get_session(session_id)
        if session is None or session.agent_id != agent_id:
            raise SessionNotFound(f"session {session_id!r} does not exist")
        if session.ended_at is not None:
            raise SessionEnded(f"session {session_id!r} has ended; start a new session")
        cache[session_id] = session
        return session

    def _record(self, p: _Prepared, found: Sequence[Any], vector: np.ndarray) -> MemoryRecord:
        entities: dict[tuple[str, str], Entity] = {}
        for e in found:
            entities.setdefault((e.kind, e.key), Entity(kind=e.kind, value=e.value, key=e.key))
        for key in p.tag_orders:
            entities.setdefault(("order", key), Entity(kind="order", value=f"order:{key}", key=key))
        for key in p.tag_tickets:
            entities.setdefault(("ticket", key), Entity(kind="ticket", value=f"ticket:{key}", key=key))
        all_entities = tuple(entities.values())
        memory = _with_entities(p.memory, all_entities)
        return MemoryRecord(
            memory=memory,
            embedding=vector,
            customer_ids=p.customers,
            orders=tuple(e.key for e in all_entities if e.kind == "order"),
            tickets=tuple(e.key for e in all_entities if e.kind == "ticket"),
            others=tuple(e for e in all_entities if e.kind not in _OWN_NODES),
        )

    def _index(self, records: Sequence[MemoryRecord]) -> None:
        by_agent: dict[str, list[MemoryRecord]] = {}
        for r in records:
            by_agent.setdefault(r.memory.agent_id, []).append(r)
        for agent_id, recs in by_agent.items():
            self.vectors.add(
                agent_id, [r.memory.id for r in recs], np.stack([r.embedding for r in recs])
            )

    # -- read one ---------------------------------------------------------------------
    def get(self, agent_id: str, memory_id: str) -> Memory:
        check_agent_id(agent_id)
        check_object_id(memory_id, "id")
        memory = self.graph.get_memories(agent_id, [memory_id]).get(memory_id)
        if memory is None or _expired(memory, self.clock()):
            raise MemoryNotFound(f"memory {memory_id!r} does not exist")
        return memory

    # -- forget -----------------------------------------------------------------------
    def forget(self, agent_id: str, memory_id: str) -> bool:
        """Remove a memory from the graph, the keyword index and the vector index."""
        check_agent_id(agent_id)
        check_object_id(memory_id, "id")
        deleted = self.graph.delete_memories(agent_id, [memory_id])
        if not deleted:
            raise MemoryNotFound(f"memory {memory_id!r} does not exist")
        self.vectors.remove(agent_id, deleted)
        return True

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
            count += len(deleted)
        return count

    # -- sessions ---------------------------------------------------------------------
    def session_start(
        self, agent_id: str, customer_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Session:
        session = Session(
            id=str(uuid.uuid4()),
            agent_id=check_agent_id(agent_id),
            started_at=self.clock(),
            customer_id=check_customer_id(customer_id),
            metadata=_check_metadata(metadata),
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
    ) -> Session:
        """End a session. With ``consolidate`` (the default) its summary becomes a memory:
        the caller's ``summary`` if given, else an extractive one (consolidation.py) when
        the session holds two or more memories."""
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
        ended_at = self.clock()
        record = self._summary_record(session, summary, ended_at) if consolidate else None
        if record is None:
            self.graph.end_session(session_id, ended_at, summary)
        else:
            text = record.memory.content
            self.graph.write_memories(
                [record], after=lambda run: hs.write_summary(run, record.memory.id, session_id, ended_at, text)
            )
            self._index([record])
        return self.session_get(session_id)

    def _summary_record(self, session: Session, summary: str | None, ended_at: datetime) -> MemoryRecord | None:
        """The summary memory of a session about to end, or None when there is nothing to say."""
        memories = self.graph.session_memories(session.id, ended_at)
        if summary is None:
            embeddings = hs.session_embeddings(self.graph, session.id, [m.id for m in memories])
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
            metadata={"summaryOf": session.id, "sources": [m.id for m in memories][:100]},
            created_at=memories[-1].created_at if memories else ended_at,
        )
        prepared = self._prepare(request, ended_at, {})
        prepared = replace(prepared, memory=replace(prepared.memory, kind="summary"))
        return self._records([prepared])[0]

    def session_get(self, session_id: str, *, agent_id: str | None = None) -> Session:
        check_object_id(session_id, "sessionId")
        session = self.graph.get_session(session_id)
        if session is None or (agent_id is not None and session.agent_id != agent_id):
            raise SessionNotFound(f"session {session_id!r} does not exist")
        return session

    def session_memories(self, session_id: str, *, agent_id: str | None = None) -> list[Memory]:
        self.session_get(session_id, agent_id=agent_id)
        return self.graph.session_memories(session_id, self.clock())


def _with_entities(m: Memory, entities: tuple[Entity, ...]) -> Memory:
    return replace(m, entities=entities)


def _expired(m: Memory, now: datetime) -> bool:
    return m.expires_at is not None and m.expires_at <= now


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", code="INVALID_METADATA")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", code="INVALID_METADATA") from exc
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is {len(encoded.encode())} bytes; the limit is {MAX_METADATA_BYTES}",
            code="INVALID_METADATA",
        )
    return json.loads(encoded)
