"""Tickets: status, related tickets, customer timelines and aggregates.

RELATED edges are kept up to date incrementally. A store (or forget) that touches a
ticket gives it a new refresh token in the same transaction; after the commit,
``refresh`` recomputes the RELATED edges of every marked ticket against all the
agent's tickets and clears the token only if no newer change arrived meanwhile. Only
edges incident to a changed ticket can change (a pair's weight depends on the two
tickets alone), so this is exact without any nightly batch. Tokens left by a crash, or
by the migration that introduced relations, are picked up when the service opens.

The refresh runs on a thread of its own (``refresh_soon``), not in the write that marked
the tickets: at 100k memories one refresh reads far more of the graph than a store writes,
and a single store waited for it (8 clients' single stores ran at 0.09x the embedding
floor, BENCHMARKS.md). Changes that arrive while it runs are taken by its next pass, so
a burst of stores costs a few refreshes, not one each. Whatever reads RELATED edges
(``related``, the explorer through ``catch_up``) finishes the pending refresh first, so
a reader still sees every acknowledged store, whichever process stored it.

Candidates come from the graph (tickets that share an order, a customer or an entity,
or are named in the same memory) and from the agent's vector index (tickets whose
memories are nearest to the ticket's mean embedding); ``app/domain/relations.py`` scores them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
from casegraph.domain.relations import RELATING_ENTITY_KINDS, Evidence, relate, strongest_paths
from casegraph.domain.ticket_models import (
    MAX_CHANNEL,
    MAX_SUBJECT,
    TICKET_STATUSES,
    Count,
    RelatedTicket,
    Relation,
    Ticket,
    TicketEvent,
)
from casegraph.domain.validation import (
    check_agent_id,
    check_customer_id,
    check_limit,
    check_page,
    check_ticket_id,
)
from casegraph.errors import InvalidInput, TicketNotFound
from casegraph.extractors import ENTITY_KINDS
from casegraph.ops.settings import Settings
from casegraph.storage.search import VectorIndex
from casegraph.storage.tickets import TicketRefresh, TicketSource, TicketStore

log = logging.getLogger("casegraph.tickets")

MAX_DEPTH = 3
# Aggregates (top entities, repeat customers) are short leaderboards.
MAX_RANKED = 100
# A customer, order or entity shared by more tickets than this relates none of them: it
# says little ("same product" across hundreds of tickets) and would add edges quadratically.
HUB_LIMIT = 50
# Nearest memories searched per changed ticket to find semantically similar tickets, and
# how many of the most similar tickets each ticket keeps a "similar wording" relation to.
SIMILAR_POOL = 64
SIMILAR_NEIGHBOURS = 10
REFRESH_BATCH = 200
MAX_NOTE = 2_000


def check_status(value: str) -> str:
    status = value.lower() if isinstance(value, str) else value
    if status not in TICKET_STATUSES:
        raise InvalidInput(
            f"status {value!r} is not one of {', '.join(TICKET_STATUSES)}", code="INVALID_STATUS"
        )
    return status


def check_depth(depth: int) -> int:
    if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be between 1 and {MAX_DEPTH}, got {depth!r}", code="INVALID_DEPTH")
    return depth


def check_weight(value: float) -> float:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"minWeight must be between 0 and 1, got {value!r}", code="INVALID_WEIGHT")
    return float(value)


def require_ticket_id(value: str) -> str:
    ticket_id = check_ticket_id(value)
    if ticket_id is None:
        raise InvalidInput("a ticket id is required", code="INVALID_TICKET_ID")
    return ticket_id


class TicketService:
    def __init__(
        self,
        settings: Settings,
        tickets: TicketStore,
        vectors: VectorIndex,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.tickets = tickets
        self.vectors = vectors
        self.clock = clock
        self._refresh_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._refresher: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Changes signalled (refresh_soon), and how many of them a finished refresh covers:
        # the refresher skips a pass a reader's catch_up has made already.
        self._changes = 0
        self._covered = 0

    # -- reading tickets ------------------------------------------------------------------
    def get(self, agent_id: str, ticket_id: str) -> Ticket:
        check_agent_id(agent_id)
        key = require_ticket_id(ticket_id)
        found = self.tickets.get_tickets(agent_id, [key]).get(key)
        if found is None:
            raise TicketNotFound(f"ticket {key!r} does not exist")
        return found

    def get_many(self, agent_id: str, ids: Sequence[str]) -> dict[str, Ticket]:
        return self.tickets.get_tickets(agent_id, list(ids))

    def list_tickets(
        self, agent_id: str, *, status: str | None = None, customer_id: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Ticket]:
        check_agent_id(agent_id)
        check_page(limit, offset)
        return self.tickets.list_tickets(
            agent_id,
            status=check_status(status) if status is not None else None,
            customer_id=check_customer_id(customer_id),
            limit=limit,
            offset=offset,
        )

    def orders(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return self.tickets.ticket_orders(agent_id, ids)

    def customers(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return self.tickets.ticket_customers(agent_id, ids)

    def memory_ids(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return self.tickets.ticket_memory_ids(agent_id, ids, self.clock())

    def events(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        return self.tickets.ticket_events(agent_id, ids)

    def related(
        self, agent_id: str, ids: Sequence[str], *, depth: int = 1, min_weight: float = 0.0, limit: int = 50
    ) -> dict[str, list[RelatedTicket]]:
        """Tickets within ``depth`` RELATED hops of each of ``ids``, strongest first."""
        check_depth(depth)
        min_weight = check_weight(min_weight)
        check_limit(limit)

        self.catch_up(agent_id)

        def load(frontier: set[str]) -> dict[str, list[Relation]]:
            return self.tickets.relations(agent_id, sorted(frontier), min_weight)

        found = strongest_paths(list(ids), depth, min_weight, load)
        return {t: hits[:limit] for t, hits in found.items()}

    # -- changing tickets ---------------------------------------------------------------
    def update(
        self,
        agent_id: str,
        ticket_id: str,
        *,
        status: str | None = None,
        subject: str | None = None,
        channel: str | None = None,
        note: str | None = None,
    ) -> Ticket:
        """Change a ticket's status, subject or channel; a status change is recorded as an event."""
        ticket = self.get(agent_id, ticket_id)
        if status is None and subject is None and channel is None:
            raise InvalidInput("give a status, subject or channel to change", code="NOTHING_TO_UPDATE")
        now = self.clock()
        fields: dict[str, object] = {}
        if subject is not None:
            fields["subject"] = _text(subject, "subject", MAX_SUBJECT)
        if channel is not None:
            fields["channel"] = _text(channel, "channel", MAX_CHANNEL)
        event = None
        if status is not None and (status := check_status(status)) != ticket.status:
            fields["status"] = status
            event = TicketEvent(
                id=str(uuid.uuid4()), ticket_id=ticket.id, kind="status", status=status,
                previous=ticket.status, note=_text(note, "note", MAX_NOTE) if note else None, at=now,
            )
        if fields:
            fields["updated_at"] = now
            self.tickets.update_ticket(agent_id, ticket.id, fields=fields, event=event)
        return self.get(agent_id, ticket.id)

    # -- keeping RELATED edges current --------------------------------------------------------
    def refresh_soon(self) -> None:
        """After a committed change: have the refresher thread recompute what it marked
        stale (see the module docstring); returns at once."""
        with self._start_lock:
            if self._closed:
                return
            self._changes += 1
            if self._refresher is None:
                self._refresher = threading.Thread(target=self._refresh_loop, name="casegraph-tickets", daemon=True)
                self._refresher.start()
        self._wake.set()

    def catch_up(self, agent_id: str | None = None) -> None:
        """Before reading RELATED edges: recompute whatever is still marked stale (by a
        change of this process the refresher has not finished, or of another process):
        of ``agent_id`` alone when given, the only agent a read sees."""
        self.refresh(agent_id=agent_id)

    def close(self) -> None:
        """Stop the refresher after its current pass (what it leaves stale stays marked,
        and is refreshed when the service opens again)."""
        with self._start_lock:
            self._closed = True
            thread = self._refresher
        self._wake.set()
        if thread is not None:
            thread.join(timeout=120)

    def _refresh_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self.refresh(unless_covered=True)
            except Exception:  # the tokens stay: the next change, a reader or the next start retries
                log.exception("recomputing ticket relations failed; they stay marked stale")

    def refresh(self, *, unless_covered: bool = False, agent_id: str | None = None) -> int:
        """Recompute the relations of every ticket marked stale (``agent_id``'s only, when
        given); return how many were done. ``unless_covered``: nothing to do if a refresh of
        every agent since the last signalled change found nothing stale (the refresher's
        pass after a reader caught up)."""
        done = 0
        with self._refresh_lock:
            changes = self._changes
            if unless_covered and self._covered >= changes:
                return 0
            # Bounded: a ticket a concurrent store keeps touching is finished by the pass
            # that store's change asks for.
            for _ in range(1000):
                stale = self.tickets.stale_tickets(REFRESH_BATCH, agent_id)
                if not stale:
                    if agent_id is None:
                        self._covered = max(self._covered, changes)
                    break
                by_agent: dict[str, list[tuple[str, str]]] = {}
                for agent_id, ticket_id, token in stale:
                    by_agent.setdefault(agent_id, []).append((ticket_id, token))
                cleared = sum(self._refresh_agent(a, items) for a, items in by_agent.items())
                done += cleared
                if cleared == 0:
                    break
        return done

    def _refresh_agent(self, agent_id: str, items: list[tuple[str, str]]) -> int:
        ids = [t for t, _ in items]
        sources: dict[str, list[TicketSource]] = {t: [] for t in ids}
        for s in self.tickets.ticket_sources(agent_id, ids):
            sources[s.ticket_id].append(s)
        centroids = {t: _centroid([s.embedding for s in srcs]) for t, srcs in sources.items()}

        evidence: dict[tuple[str, str], Evidence] = {}

        def about(t: str, x: str) -> Evidence:
            return evidence.setdefault((min(t, x), max(t, x)), Evidence())

        for t, x in self.tickets.mentioned_together(agent_id, ids):
            about(t, x).mentioned_together = True
        for kind in ("order", "customer", "entity"):
            for t, x, k, key, value in self.tickets.shared_keys(agent_id, ids, kind, HUB_LIMIT, RELATING_ENTITY_KINDS):
                ev = about(t, x)
                if k == "order":
                    ev.orders.add(key)
                elif k == "customer":
                    ev.customers.add(key)
                else:
                    ev.entities[(k, key)] = value
        floors = self._similarities(agent_id, centroids, about)

        threshold = self.settings.ticket_similarity_threshold
        relations = [rel for (a, b), ev in evidence.items() if (rel := relate(a, b, ev, threshold))]
        refreshed = [
            TicketRefresh(
                ticket_id=t,
                token=token,
                embedding=centroids[t],
                similar_floor=floors[t],
                first_at=sources[t][0].created_at if sources[t] else None,
                last_at=max(s.created_at for s in sources[t]) if sources[t] else None,
            )
            for t, token in items
        ]
        return self.tickets.save_refresh(agent_id, refreshed, relations, self.clock())

    def _similarities(
        self, agent_id: str, centroids: dict[str, list[float] | None], about: Callable[[str, str], Evidence]
    ) -> dict[str, float | None]:
        """Record the similarity of each changed ticket to its nearest tickets; return the
        changed tickets' new similarity floors.

        A ticket keeps "similar wording" relations to its ``SIMILAR_NEIGHBOURS`` most similar
        tickets above the threshold (and to any ticket that counts it among its own, judged
        by that ticket's stored floor), so a crowd of near-identical tickets ("where is my
        parcel?") gives each ticket a few relations instead of one to every other.
        Candidates: tickets whose memories are nearest to the ticket's mean embedding, plus
        its current similar-wording neighbours (so a relation the other side made is
        re-judged, not silently dropped).
        """
        threshold = self.settings.ticket_similarity_threshold
        candidates: dict[str, set[str]] = {t: set() for t, c in centroids.items() if c is not None}
        nearest: dict[str, list[str]] = {}
        for t in candidates:
            hits = self.vectors.search(agent_id, np.asarray(centroids[t], dtype=np.float32), SIMILAR_POOL)
            nearest[t] = [h.memory_id for h in hits]
        memory_tickets = self.tickets.tickets_of_memories(agent_id, sorted({m for ms in nearest.values() for m in ms}))
        for t, memory_ids in nearest.items():
            candidates[t].update(x for m in memory_ids for x in memory_tickets.get(m, ()))
        for t, x in self.tickets.similar_neighbours(agent_id, sorted(candidates)):
            candidates[t].add(x)
        others = sorted({x for xs in candidates.values() for x in xs} - centroids.keys())
        stored = self.tickets.ticket_vectors(agent_id, others)

        scored: dict[str, list[tuple[float, str]]] = {}
        floors: dict[str, float | None] = {t: None for t in centroids}
        for t, xs in candidates.items():
            mine = np.asarray(centroids[t], dtype=np.float32)
            sims = []
            for x in xs - {t}:
                theirs = centroids[x] if x in centroids else stored.get(x, (None, None))[0]
                if theirs is not None:
                    s = float(np.dot(mine, np.asarray(theirs, dtype=np.float32)))
                    if s >= threshold:
                        sims.append((s, x))
            sims.sort(reverse=True)
            scored[t] = sims
            floors[t] = sims[SIMILAR_NEIGHBOURS - 1][0] if len(sims) >= SIMILAR_NEIGHBOURS else threshold
        for t, sims in scored.items():
            for s, x in sims:
                floor_x = floors[x] if x in floors else stored.get(x, (None, None))[1]
                if s >= floors[t] or s >= (floor_x if floor_x is not None else threshold):
                    about(t, x).similarity = s
        return floors

    # -- analyst views --------------------------------------------------------------------
    def status_counts(self, agent_id: str) -> list[Count]:
        check_agent_id(agent_id)
        return self.tickets.status_counts(agent_id)

    def top_entities(self, agent_id: str, kind: str | None = None, limit: int = 10) -> list[Count]:
        """Entities (products, e-mails, places...) by the number of tickets that mention them."""
        check_agent_id(agent_id)
        if kind is not None and kind not in ENTITY_KINDS - {"order", "ticket", "customer"}:
            raise InvalidInput(f"kind {kind!r} is not an entity kind", code="INVALID_KIND")
        return self.tickets.top_entities(agent_id, kind, check_limit(limit, MAX_RANKED))

    def repeat_customers(self, agent_id: str, min_tickets: int = 2, limit: int = 20) -> list[Count]:
        """Customers who raised at least ``min_tickets`` tickets, most first."""
        check_agent_id(agent_id)
        if not isinstance(min_tickets, int) or min_tickets < 1:
            raise InvalidInput("minTickets must be at least 1", code="INVALID_LIMIT")
        return self.tickets.repeat_customers(agent_id, min_tickets, check_limit(limit, MAX_RANKED))


def _centroid(vectors: Sequence[Sequence[float]]) -> list[float] | None:
    """Unit-length mean of embeddings (None for none)."""
    if not vectors:
        return None
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).tolist() if norm > 0 else None


def _text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must not be empty", code="INVALID_INPUT")
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters", code="INVALID_INPUT")
    if len(value) > limit:
        raise InvalidInput(f"{what} must be at most {limit} characters", code="INVALID_INPUT")
    return value
