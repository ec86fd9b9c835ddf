"""Replay a generated history into CaseGraph through its service layer, day by day.

The service clock is moved along with the history (a ``ReplayClock``): each day, the day's
sessions start, its memories are stored in one ``store_batch`` (with their original
``createdAt``), and the sessions that ended that day end - which consolidates them into
summary memories. Near-duplicate reinforcement and supersession happen on the way, as
they would in production, and so does the server's idle sweep: a session the bot never
ends is ended (and summarised) once nothing was stored into it for
``session_idle_minutes``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from casegraph.domain.models import StoreRequest
from casegraph.services import Services

from benchmarks.histories import NOW, History


class ReplayClock:
    """The service clock, moved by the replay (never past NOW)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = min(when, NOW)


@dataclass
class Ingested:
    """What the replay learned: the stored id of every generated memory, and hygiene outcomes."""

    memory_ids: dict[str, str] = field(default_factory=dict)  # generator key -> stored id
    deduplicated: set[str] = field(default_factory=set)  # generator keys answered as reinforcements
    session_ids: dict[str, str] = field(default_factory=dict)  # generator session key -> session id
    summaries: dict[str, tuple[str, str]] = field(default_factory=dict)  # session key -> (id, text)
    seconds: float = 0.0
    stored: int = 0


def replay(history: History, services: Services, clock: ReplayClock) -> Ingested:
    out = Ingested()
    started = time.perf_counter()
    memories = services.memories
    by_day: dict[date, list[str]] = defaultdict(list)
    for key, m in history.memories.items():
        by_day[m.created_at.date()].append(key)
    starts: dict[date, list[str]] = defaultdict(list)
    ends: dict[date, list[str]] = defaultdict(list)
    for key, s in history.sessions.items():
        if not s.memory_keys:
            continue
        first = history.memories[s.memory_keys[0]].created_at
        starts[first.date()].append(key)
        if s.ended_at is not None:
            last = max(history.memories[k].created_at for k in s.memory_keys)
            ends[last.date()].append(key)

    for day in sorted(set(by_day) | set(starts) | set(ends)):
        keys = by_day.get(day, [])
        day_start = min(
            [history.sessions[k].started_at for k in starts.get(day, [])]
            + [history.memories[k].created_at for k in keys]
        )
        clock.set(day_start)
        for skey in starts.get(day, []):
            s = history.sessions[skey]
            out.session_ids[skey] = memories.session_start(
                s.agent, s.customer if s.start_customer else None, {"source": "benchmark"}
            ).id
        if keys:
            clock.set(max(history.memories[k].created_at for k in keys) + timedelta(minutes=5))
            requests = [_request(history, out, k) for k in keys]
            for k, stored in zip(keys, memories.store_batch(requests), strict=True):
                out.memory_ids[k] = stored.id
                if stored.deduplicated:
                    out.deduplicated.add(k)
        for skey in ends.get(day, []):
            session_id = out.session_ids[skey]
            memories.session_end(session_id)
            summary_id = services.graph.session_summary_memory(session_id)
            if summary_id is not None:
                agent = history.sessions[skey].agent
                text = services.graph.get_memories(agent, [summary_id])[summary_id].content
                out.summaries[skey] = (summary_id, text)
        _sweep(memories)
    clock.set(NOW)
    _sweep(memories)
    # Sessions the idle sweep ended have summaries too.
    for skey, session_id in out.session_ids.items():
        if skey not in out.summaries:
            summary_id = services.graph.session_summary_memory(session_id)
            if summary_id is not None:
                agent = history.sessions[skey].agent
                text = services.graph.get_memories(agent, [summary_id])[summary_id].content
                out.summaries[skey] = (summary_id, text)
    out.seconds = time.perf_counter() - started
    out.stored = services.graph.count_memories()
    return out


def _sweep(memories) -> None:
    """What the server's background sweep does (app/api/app.py): end the sessions idle past
    ``session_idle_minutes`` at the service clock, summary included."""
    while len(memories.end_idle_sessions()) >= 500:
        pass


def _request(history: History, out: Ingested, key: str) -> StoreRequest:
    m = history.memories[key]
    return StoreRequest(
        agent_id=m.agent,
        content=m.content,
        importance=m.importance,
        tags=m.tags,
        session_id=out.session_ids[m.session],
        customer_id=m.customer if m.customer_link == "field" else None,
        memory_type=m.memory_type,
        metadata={"benchmarkKey": m.key},
        created_at=m.created_at,
    )
