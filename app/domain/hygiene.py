"""Memory hygiene on the write path: near-duplicates reinforce, newer states supersede.

``HygienePlanner.plan`` looks at a batch of memories about to be written and decides:

- **near-duplicates** - a memory of the same agent about the same customer whose
  embedding is at least ``dedup_threshold`` similar, of the same memory type, naming the
  same identifiers, numbers and states (so "refund approved for #48213" never merges into
  "... for #48231", nor "call back on Friday" into "... on Monday"). The store does not
  create a memory: it reinforces the existing one (importance up by ``dedup_boost``,
  ``last_seen_at`` and ``reinforce_count`` updated) and answers with it, flagged
  ``deduplicated``. Memories with a TTL and session summaries never take part, and a
  message of a session that names an order, ticket or identifier never merges into a
  memory of another session (it is that conversation's mention, see app/domain/threads.py).
- **supersession** - a memory about the same order or ticket that states a different
  state of the same things ("refund pending" -> "refund approved", see states.py) makes
  the older one superseded: it stays for history, is excluded from recall unless asked
  for, and ranks below its successor when included. Time order decides, not arrival
  order, so importing history out of order still marks the older statement. Forgetting
  (or sweeping) the newer memory makes the older one current again.

The plan is written inside the same transaction as the new memories (``HygienePlanner.write``
hands the write path's open transaction to the store).
Two concurrent stores of the same fact may both be created: dedup is best effort.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from casegraph.domain import threads
from casegraph.domain.models import Entity, Memory
from casegraph.domain.states import TICKET_TOPICS, extract_states, supersedes
from casegraph.storage import hygiene as hs
from casegraph.storage.memories import MemoryRecord, Transaction

# Entity kinds whose values must agree for two memories to be duplicates.
_IDENTITY_KINDS = frozenset(
    {"order", "ticket", "email", "phone", "tracking", "identifier", "money", "date", "person", "product", "org", "place"}
)
# A word with a digit in it: a number ("4521") or a code ("tokbcc1cc09f7", "16gb"). Texts
# that differ in one never say the same thing, whether or not the extractor took the code for
# an identifier: random codes that differ only in their letters have the same numbers, and
# their embeddings are ~0.97 alike.
_NUMBER = re.compile(r"\w*\d\w*")
_NEGATION = re.compile(r"\b(?:not|no|never|n't|cannot|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HygieneConfig:
    dedup_threshold: float = 0.93
    dedup_boost: float = 0.05


@dataclass
class HygienePlan:
    """What a store does besides creating memories; written in the same transaction
    (``HygienePlanner.write``)."""

    fresh: list[MemoryRecord]
    # index of a request in the batch -> id of the memory it reinforced instead
    duplicate_of: dict[int, str] = field(default_factory=dict)
    reinforcements: list[hs.Reinforcement] = field(default_factory=list)
    supersessions: list[hs.Supersession] = field(default_factory=list)
    states: dict[str, tuple[str, ...]] = field(default_factory=dict)


def identity(content: str, entities: Sequence[Entity]) -> tuple[str, ...]:
    """What must match for two texts to say the same thing: ids, numbers, negation.

    Numbers and codes (words with a digit) count with their multiplicity (a sorted
    multiset): "item 0 for writer 0" and "item 3 for writer 0" differ even when a 3 appears
    elsewhere in both texts, while word order alone does not matter.
    """
    keys = {f"{e.kind}:{e.key}" for e in entities if e.kind in _IDENTITY_KINDS}
    if _NEGATION.search(content):
        keys.add("negated")
    numbers = sorted(
        f"n:{w.lstrip('0') or '0'}" if w.isdigit() else f"n:{w.casefold()}" for w in _NUMBER.findall(content)
    )
    return (*sorted(keys), *numbers)


@dataclass
class _Item:
    """A memory the planner compares against: existing or earlier in the batch."""

    id: str
    embedding: np.ndarray
    memory_type: str
    content: str
    entities: tuple[Entity, ...]
    states: tuple[str, ...]
    importance: float
    created_at: datetime
    last_seen_at: datetime | None
    existing: bool
    session_id: str | None = None  # known for memories of this batch
    reinforced: int = 0
    _identity: tuple[str, ...] | None = None

    @property
    def identity(self) -> tuple[str, ...]:
        # Computed only for the few memories similar enough to be compared.
        if self._identity is None:
            self._identity = identity(self.content, self.entities)
        return self._identity


class HygienePlanner:
    """Plans a batch's hygiene from what ``store`` holds, and writes the plan through it."""

    def __init__(self, store: hs.HygieneStore, config: HygieneConfig) -> None:
        self.store = store
        self.config = config

    def write(self, plan: HygienePlan, tx: Transaction, now: datetime) -> None:
        """Write the plan inside the write path's open transaction ``tx``."""
        self.store.write_hygiene(tx, plan.states, plan.reinforcements, plan.supersessions, now)

    def plan(self, records: Sequence[MemoryRecord], now: datetime) -> HygienePlan:
        records = [self._with_states(r) for r in records]
        plan = HygienePlan(fresh=[])
        by_customer: dict[tuple[str, str], list[_Item]] = {}
        targets: dict[str, _Item] = {}  # reinforced existing memories
        batch_items: dict[str, _Item] = {}  # reinforced memories created in this batch
        sessions: dict[str, str | None] = {}  # existing memory id -> its session
        for (agent_id, customer_id), neighbours in self._neighbours(records, now).items():
            by_customer[(agent_id, customer_id)] = [
                _Item(
                    id=n.id, embedding=n.embedding, memory_type=n.memory_type,
                    content=n.content, entities=n.entities, states=n.states,
                    importance=n.importance, created_at=n.created_at,
                    last_seen_at=n.last_seen_at, existing=True,
                )
                for n in neighbours
            ]

        for index, rec in enumerate(records):
            m = rec.memory
            item = _Item(
                id=m.id, embedding=np.asarray(rec.embedding, dtype=np.float32), memory_type=m.memory_type,
                content=m.content, entities=m.entities, states=m.states, importance=m.importance,
                created_at=m.created_at, last_seen_at=None, existing=False, session_id=m.session_id,
            )
            if _dedupable(m):
                key = (m.agent_id, m.customer_id)
                match = self._duplicate(item, by_customer[key], lambda p, m=m: self._same_thread(m, p, sessions))
                if match is not None:
                    self._reinforce(match, item)
                    plan.duplicate_of[index] = match.id
                    (targets if match.existing else batch_items)[match.id] = match
                    continue
                by_customer[key].append(item)
            plan.fresh.append(rec)

        # Reinforced memories of this batch carry the bump in their own row.
        plan.fresh = [self._bumped(r, batch_items.get(r.memory.id)) for r in plan.fresh]
        # Written for memories created in this batch too: CREATE leaves the new columns at
        # their defaults.
        plan.reinforcements = [
            hs.Reinforcement(t.id, t.importance, t.last_seen_at or t.created_at, t.reinforced)
            for t in (*targets.values(), *batch_items.values())
        ]
        plan.states = {r.memory.id: r.memory.states for r in plan.fresh if r.memory.states}
        plan.supersessions = self._supersessions(plan.fresh, now)
        if plan.supersessions:
            born_superseded = {s.older_id: s.newer_id for s in plan.supersessions}
            plan.fresh = [
                replace(r, memory=replace(r.memory, superseded_by=born_superseded[r.memory.id]))
                if r.memory.id in born_superseded else r
                for r in plan.fresh
            ]
        return plan

    # -- near-duplicates ----------------------------------------------------------------
    def _neighbours(
        self, records: Sequence[MemoryRecord], now: datetime
    ) -> dict[tuple[str, str], list[hs.Neighbour]]:
        """The existing memories each (agent, customer) of the batch may duplicate: one
        query per agent for all its customers in the batch."""
        customers: dict[str, dict[str, list[np.ndarray]]] = {}
        for r in records:
            if _dedupable(r.memory):
                customers.setdefault(r.memory.agent_id, {}).setdefault(r.memory.customer_id, []).append(
                    np.asarray(r.embedding, dtype=np.float32)
                )
        out: dict[tuple[str, str], list[hs.Neighbour]] = {}
        for agent_id, near in customers.items():
            # Only memories this similar to one of the batch's can be its duplicates: a
            # server-side engine leaves the others out instead of shipping their vectors.
            found = self.store.dedup_neighbours(
                agent_id, list(near), now, near={c: np.stack(v) for c, v in near.items()},
                min_similarity=self.config.dedup_threshold,
            )
            out.update(((agent_id, c), n) for c, n in found.items())
        return out

    def _duplicate(self, item: _Item, pool: Sequence[_Item], accept: Callable[[_Item], bool]) -> _Item | None:
        if not pool:
            return None
        sims = np.stack([p.embedding for p in pool]) @ item.embedding
        best: _Item | None = None
        best_sim = self.config.dedup_threshold
        for p, sim in zip(pool, sims.tolist(), strict=True):
            if (
                sim >= best_sim
                and p.memory_type == item.memory_type
                and p.identity == item.identity
                and p.states == item.states
                and accept(p)
            ):
                best, best_sim = p, sim
        return best

    def _same_thread(self, m: Memory, match: _Item, sessions: dict[str, str | None]) -> bool:
        """False when ``m``, a message of a session that names an order, ticket or
        identifier, would merge into a memory of another session: it is its own
        conversation's mention of that id, which recall walks to the conversation's
        outcome (app/domain/threads.py). "It's order 4521" said again in a second chat stays."""
        if m.session_id is None or not threads.names_a_case(m.entities):
            return True
        if not match.existing:
            return match.session_id == m.session_id
        if match.id not in sessions:
            sessions[match.id] = self.store.memory_session(m.agent_id, match.id)
        return sessions[match.id] == m.session_id

    def _reinforce(self, target: _Item, dup: _Item) -> None:
        target.importance = min(1.0, max(target.importance, dup.importance) + self.config.dedup_boost)
        seen = [t for t in (target.last_seen_at, dup.created_at, target.created_at) if t is not None]
        target.last_seen_at = max(seen)
        target.reinforced += 1

    @staticmethod
    def _bumped(rec: MemoryRecord, item: _Item | None) -> MemoryRecord:
        if item is None:
            return rec
        m = replace(
            rec.memory, importance=item.importance, last_seen_at=item.last_seen_at,
            reinforce_count=item.reinforced,
        )
        return replace(rec, memory=m)

    @staticmethod
    def _with_states(rec: MemoryRecord) -> MemoryRecord:
        if rec.memory.kind is not None:
            return rec  # summaries restate history; they neither supersede nor get superseded
        return replace(rec, memory=replace(rec.memory, states=extract_states(rec.memory.content)))

    # -- supersession -------------------------------------------------------------------
    def _supersessions(self, fresh: Sequence[MemoryRecord], now: datetime) -> list[hs.Supersession]:
        stating = [r for r in fresh if r.memory.states and (r.orders or r.tickets)]
        if not stating:
            return []
        by_agent: dict[str, list[MemoryRecord]] = {}
        for r in stating:
            by_agent.setdefault(r.memory.agent_id, []).append(r)
        out: dict[str, hs.Supersession] = {}
        for agent_id, recs in by_agent.items():
            orders = sorted({o for r in recs for o in r.orders})
            tickets = sorted({t for r in recs for t in r.tickets})
            pool = [
                _Stated(s.id, s.states, s.created_at, s.orders, s.tickets)
                for s in self.store.stateful_neighbours(agent_id, orders, tickets, now)
            ]
            pool += [
                _Stated(r.memory.id, r.memory.states, r.memory.created_at, frozenset(r.orders),
                        frozenset(r.tickets))
                for r in recs
            ]
            # Oldest first, so each memory is superseded by its nearest successor.
            pool.sort(key=lambda s: (s.created_at, s.id))
            new_ids = {r.memory.id for r in recs}
            for i, older in enumerate(pool):
                if older.id in out:
                    continue
                for newer in pool[i + 1 :]:
                    if older.id not in new_ids and newer.id not in new_ids:
                        continue  # both existed before this store: already judged
                    if newer.created_at <= older.created_at:
                        continue
                    if _supersedes(newer, older):
                        out[older.id] = hs.Supersession(older.id, newer.id, now)
                        break
        return list(out.values())


def _dedupable(m: Memory) -> bool:
    """Memories with a TTL and session summaries never take part in deduplication."""
    return m.customer_id is not None and m.expires_at is None and m.kind is None


@dataclass(frozen=True, slots=True)
class _Stated:
    id: str
    states: tuple[str, ...]
    created_at: datetime
    orders: frozenset[str]
    tickets: frozenset[str]


def _supersedes(newer: _Stated, older: _Stated) -> bool:
    share_ticket = bool(newer.tickets & older.tickets)
    if not share_ticket and not (newer.orders & older.orders):
        return False

    def comparable(states: tuple[str, ...]) -> tuple[str, ...]:
        # A ticket's own state only compares with statements about the same ticket.
        return tuple(s for s in states if share_ticket or s.partition(":")[0] not in TICKET_TOPICS)

    return supersedes(comparable(newer.states), comparable(older.states))


def reinforced_result(memory: Memory) -> Memory:
    """The answer to a store that reinforced ``memory`` instead of creating one."""
    return replace(memory, deduplicated=True)
