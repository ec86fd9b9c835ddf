"""Memories in the graph: reads by id, page and filter, ranking attributes, deletes.

Implements the read side of ``MemoryStore`` (app/storage/memories.py) and keeps the
attribute cache (attrs_cache.py) exact: every finished write reports what it wrote and
changed (``Transaction.attrs_written``/``attrs_changed``), and the cache follows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from casegraph.domain.models import Memory, RecallFilter, is_live
from casegraph.storage.embedded.attrs_cache import AttrsCache
from casegraph.storage.embedded.batching import POINT_LOOKUP_LIMIT
from casegraph.storage.embedded.connection import Connection, Transaction
from casegraph.storage.embedded.tickets import mark_tickets_stale
from casegraph.storage.memories import Attrs, Columns
from casegraph.storage.rows import (
    ATTR_COLUMNS,
    LIVE,
    MEMORY_COLUMNS,
    attrs_from_row,
    memories_by_key,
    memory_from_row,
    node_uid,
)
from casegraph.storage.search import KeyIds
from casegraph.times import utc

log = logging.getLogger("casegraph.graph")

# Up to this many ids, one primary-key lookup each beats one scan of the Memory table.
# More memory texts than this are read by a scan of the agent's memories (memory_texts).
_TEXT_LOOKUP_LIMIT = 500

# A write that changed at most this many memories' attributes reads them back into the
# attribute cache (a point lookup each); past it, they are looked up when recall needs them.
_REREAD_CHANGED = 64

# A customer filter answered from the attribute cache looks up at most this many memories
# the cache lacks (a point lookup each); past it, the filter scans (MemoryQueries._customer_attrs).
_CACHE_MISSES_LOOKED_UP = 16


class MemoryQueries(Connection):
    """Memories (a part of ``GraphStore``)."""

    _attrs_cache: AttrsCache
    key_ids: KeyIds | None  # graph.py

    def _update_attrs_cache(self, tx: Transaction, committed: bool, reported: bool) -> None:
        """Bring the attribute cache up to a finished write (never raises: it clears)."""
        cache = self._attrs_cache
        try:
            if not committed:
                cache.forget(tx.changed)  # nothing changed; only in case
            elif not reported:
                cache.clear()
            else:
                for agent_id, attrs in tx.written.items():
                    cache.record(agent_id, attrs)
                cache.forget(tx.changed)
                if len(tx.changed) <= _REREAD_CHANGED:
                    # Still under the write lock: nothing can change them again meanwhile.
                    for memory_id in tx.changed:
                        for row in self.read_prepared(
                            f"MATCH (m:Memory {{id: $id}}) RETURN m.agent_id, {ATTR_COLUMNS}", {"id": memory_id}
                        ):
                            cache.record(row[0], {memory_id: attrs_from_row(row[1:])})
        except Exception:  # a cache must not fail a committed write
            log.exception("attribute cache update failed; cleared")
            cache.clear()

    def delete_memories(self, agent_id: str, ids: Sequence[str]) -> list[str]:
        """Delete memories (and their edges, and the aliases learned from them); return
        the ids that existed."""
        with self.transaction(reports_attrs=True) as run:
            run.attrs_changed(ids)
            if len(ids) <= POINT_LOOKUP_LIMIT:
                # One primary-key statement per id: an IN list scans the whole table.
                found = []
                for memory_id in dict.fromkeys(ids):
                    mark_tickets_stale(
                        run,
                        "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id = $id AND m.agent_id = $a",
                        {"id": memory_id, "a": agent_id},
                    )
                    rows = run(
                        "MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a "
                        "DETACH DELETE m RETURN m.id",
                        {"id": memory_id, "a": agent_id},
                    )
                    found.extend(r[0] for r in rows)
                if found:
                    # What a deleted memory superseded is the latest known state again.
                    rows = run(
                        "MATCH (m:Memory) WHERE m.agent_id = $a AND m.superseded_by IN $ids "
                        "SET m.superseded_by = NULL RETURN m.id",
                        {"ids": found, "a": agent_id},
                    )
                    run.attrs_changed(r[0] for r in rows)
                    self.forget_aliases_of(run, agent_id, found)
                return found
            rows = run(
                "MATCH (m:Memory) WHERE m.id IN $ids AND m.agent_id = $a RETURN m.id",
                {"ids": list(ids), "a": agent_id},
            )
            found = [r[0] for r in rows]
            if found:
                mark_tickets_stale(
                    run, "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id IN $ids", {"ids": found}
                )
                run(
                    "MATCH (m:Memory) WHERE m.id IN $ids AND m.agent_id = $a DETACH DELETE m",
                    {"ids": found, "a": agent_id},
                )
                # What a deleted memory superseded is the latest known state again.
                rows = run(
                    "MATCH (m:Memory) WHERE m.agent_id = $a AND m.superseded_by IN $ids "
                    "SET m.superseded_by = NULL RETURN m.id",
                    {"ids": found, "a": agent_id},
                )
                run.attrs_changed(r[0] for r in rows)
                self.forget_aliases_of(run, agent_id, found)
        return found

    def expired_memory_ids(self, now: datetime) -> list[tuple[str, str]]:
        rows = self.read(
            "MATCH (m:Memory) WHERE m.expires_at IS NOT NULL AND m.expires_at <= $now "
            "RETURN m.agent_id, m.id",
            {"now": now},
        )
        return [(r[0], r[1]) for r in rows]

    # -- reads: memories ------------------------------------------------------------
    def existing_memory_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` that are stored (for any agent: ids are global keys)."""
        rows = self.read("MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id", {"ids": list(ids)})
        return {r[0] for r in rows}

    def agent_memories(
        self, agent_id: str, now: datetime, *, after: tuple[datetime, str] | None = None, limit: int = 500
    ) -> list[Memory]:
        """One page of an agent's unexpired memories, oldest first (keyset paging on (created_at, id))."""
        params: dict[str, Any] = {"a": agent_id, "now": now}
        where = f"m.agent_id = $a AND {LIVE}"
        if after is not None:
            where += " AND (m.created_at > $t OR (m.created_at = $t AND m.id > $id))"
            params["t"], params["id"] = after
        rows = self.read(
            f"MATCH (m:Memory) WHERE {where} RETURN {MEMORY_COLUMNS} "
            f"ORDER BY m.created_at, m.id LIMIT {int(limit)}",
            params,
        )
        return [memory_from_row(r) for r in rows]

    def get_memories(self, agent_id: str, ids: Sequence[str]) -> dict[str, Memory]:
        """Memories by id: a few ids as primary-key lookups, many as one UNWIND join."""
        if not ids:
            return {}
        if len(ids) <= POINT_LOOKUP_LIMIT:
            rows = self._point_lookups(ids, MEMORY_COLUMNS, agent_id)
        else:
            rows = self.read(
                f"UNWIND $ids AS i MATCH (m:Memory {{id: i}}) WHERE m.agent_id = $a RETURN {MEMORY_COLUMNS}",
                {"ids": list(dict.fromkeys(ids)), "a": agent_id},
            )
        return {r[0]: memory_from_row(r) for r in rows}

    def cached_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """The ranking attributes the attribute cache holds for ``ids`` (no lookups)."""
        return self._attrs_cache.get(agent_id, ids)[0]

    def cached_columns(self, agent_id: str, keys: np.ndarray) -> Columns:
        """``cached_attrs`` by vector keys, as arrays (``AttrsCache.columns``)."""
        return self._attrs_cache.columns(agent_id, keys)

    def memory_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """The ranking attributes of each existing memory, by id (from the attribute
        cache, app/storage/embedded/attrs_cache.py; one point lookup each for those it does not hold)."""
        with self._attrs_cache.reading() as reading:
            found, missing = self._attrs_cache.get(agent_id, list(dict.fromkeys(ids)))
            rows = self._point_lookups(missing, f"m.id, {ATTR_COLUMNS}", agent_id)
            fresh = {r[0]: attrs_from_row(r[1:]) for r in rows}
            self._attrs_cache.put(reading, agent_id, fresh)
        return {**found, **fresh}

    def _point_lookups(self, ids: Sequence[str], columns: str, agent_id: str) -> list[list[Any]]:
        """``columns`` of each memory of ``agent_id`` among ``ids``, one primary-key lookup
        each. The agent is compared here, not in the statement: ``WHERE m.id = $id AND
        m.agent_id = $a`` reads the agent column through Kùzu's filter and took twice as long
        as ``{id: $id}`` alone (0.54 against 0.27 ms at 100k memories, with every column)."""
        query = f"MATCH (m:Memory {{id: $id}}) RETURN m.agent_id AS owner, {columns}"
        rows: list[list[Any]] = []
        for memory_id in dict.fromkeys(ids):
            rows.extend(row[1:] for row in self.read_prepared(query, {"id": memory_id}) if row[0] == agent_id)
        return rows

    def memory_priors(
        self, agent_id: str, now: datetime, min_importance: float = 0.0
    ) -> list[tuple[str, float, datetime]]:
        """(id, importance, created_at) of the agent's live memories at or above ``min_importance``."""
        rows = self.read(
            "MATCH (m:Memory) WHERE m.agent_id = $a AND m.importance >= $mi "
            f"AND {LIVE} "
            "RETURN m.id, m.importance, m.created_at",
            {"a": agent_id, "mi": float(min_importance), "now": now},
        )
        return [(r[0], float(r[1]), utc(r[2])) for r in rows]

    def embeddings(self, agent_id: str, ids: Sequence[str]) -> np.ndarray:
        rows = self.read(
            "UNWIND $ids AS i MATCH (m:Memory {id: i}) WHERE m.agent_id = $a RETURN m.id, m.embedding",
            {"ids": list(dict.fromkeys(ids)), "a": agent_id},
        )
        by_id = {r[0]: r[1] for r in rows}
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def load_attrs(self) -> dict[str, set[str]]:
        """Fill the attribute cache with every memory's ranking attributes; return each
        agent's memory ids.

        Read in 16 slices of the id range, so the rows in Python at once stay small (one
        read of 91k memories left ~85 MB of freed objects in the heap; slices ~20 MB).
        """
        out: dict[str, set[str]] = {}
        bounds: list[str | None] = [None, *"123456789abcdef", None]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            where = " AND ".join(c for c, v in (("m.id >= $lo", lo), ("m.id < $hi", hi)) if v)
            params = {k: v for k, v in (("lo", lo), ("hi", hi)) if v}
            with self._attrs_cache.reading() as reading:
                rows = self.read(f"MATCH (m:Memory) WHERE {where} RETURN m.agent_id, m.id, {ATTR_COLUMNS}", params)
                by_agent: dict[str, dict[str, Attrs]] = {}
                for r in rows:
                    by_agent.setdefault(r[0], {})[r[1]] = attrs_from_row(r[2:])
                for agent_id, attrs in by_agent.items():
                    self._attrs_cache.put(reading, agent_id, attrs)
                    out.setdefault(agent_id, set()).update(attrs)
        return out

    def all_memory_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for agent_id, memory_id in self.read("MATCH (m:Memory) RETURN m.agent_id, m.id"):
            out.setdefault(agent_id, set()).add(memory_id)
        return out

    def filtered_ids(self, agent_id: str, flt: RecallFilter, now: datetime, limit: int) -> list[str] | None:
        """Ids of every memory the filter allows, or None when there are more than ``limit``
        (then recall searches the vector index and filters its hits instead)."""
        found = self.filtered_attrs(agent_id, flt, now, limit)
        return None if found is None else list(found)

    def filtered_attrs(self, agent_id: str, flt: RecallFilter, now: datetime, limit: int) -> dict[str, Attrs] | None:
        """``filtered_ids`` with each memory's ranking attributes.

        With the key map (``key_ids``, the vector store's, wired at opening), a filter on a
        customer and at most the ranking attributes (dates, importance, superseded) is
        answered from the keys on the customer's ABOUT edges and the attribute cache
        (``_customer_attrs``); otherwise, or when those cannot answer, one scan does.
        """
        ids_of = self.key_ids
        if ids_of is not None and _customer_and_attrs_only(flt):
            answered, found = self._customer_attrs(agent_id, flt, now, limit, ids_of)
            if answered:
                return found
        where, params = _filter_clause(agent_id, flt, now)
        match = _filter_match(agent_id, flt, params)
        rows = self.read(f"{match} WHERE {where} RETURN m.id, m.tags, {ATTR_COLUMNS} LIMIT {int(limit) + 1}", params)
        if len(rows) > limit:
            return None
        return {r[0]: attrs_from_row(r[2:]) for r in rows if _tags_pass(flt, r[1])}

    def _customer_attrs(
        self, agent_id: str, flt: RecallFilter, now: datetime, limit: int, ids_of: KeyIds
    ) -> tuple[bool, dict[str, Attrs] | None]:
        """(answered, ``filtered_attrs``) for a filter ``_customer_and_attrs_only`` accepts.

        The scan reads seven columns of each of the customer's memories, a random read
        each in Kùzu 0.11 (~6 ms for 30 memories at 100k); the keys on the ABOUT edges come
        with the adjacency list (~0.25 ms) and the attribute cache holds the rest. Not
        answered (the caller scans) when an edge has no key, the vector store does not
        know a key, or the cache lacks more than ``_CACHE_MISSES_LOOKED_UP`` memories.
        """
        rows = self.read(
            "MATCH (c:Customer)<-[e:ABOUT]-(m:Memory) WHERE c.uid = $cuid RETURN e.k",
            {"cuid": node_uid(agent_id, flt.customer_id or "")},
        )
        keys = list(dict.fromkeys(r[0] for r in rows))
        if any(k is None for k in keys):
            return False, None
        ids = ids_of(agent_id, keys)
        if len(ids) < len(keys):
            return False, None
        ordered = [ids[k] for k in keys]
        attrs, missing = self._attrs_cache.get(agent_id, ordered)
        if len(missing) > _CACHE_MISSES_LOOKED_UP:
            return False, None
        attrs.update(self.memory_attrs(agent_id, missing) if missing else {})
        since, until = utc(flt.since), utc(flt.until)
        passing = {
            i: a
            for i in ordered
            if (a := attrs.get(i)) is not None
            and is_live(a.expires_at, now)
            and (flt.include_superseded or a.superseded_by is None)
            and (since is None or a.created_at >= since)
            and (until is None or a.created_at <= until)
            and (flt.min_importance is None or a.importance >= flt.min_importance)
        }
        return True, None if len(passing) > limit else passing

    def filter_ids(self, agent_id: str, ids: Sequence[str], flt: RecallFilter, now: datetime) -> set[str]:
        """The subset of ``ids`` that passes the filter (and is not expired)."""
        if not ids:
            return set()
        where, params = _filter_clause(agent_id, flt, now)
        params["ids"] = list(ids)
        match = _filter_match(agent_id, flt, params)
        rows = self.read(f"{match} WHERE m.id IN $ids AND {where} RETURN m.id, m.tags", params)
        return {r[0] for r in rows if _tags_pass(flt, r[1])}

    def memory_texts(self, agent_id: str, ids: Sequence[str]) -> Iterator[tuple[str, str, list[str]]]:
        """``(id, content, tags)`` of each existing memory of ``ids`` (what the keyword
        index holds). A few are point lookups; many (a keyword index rebuilt) are read
        by scanning the agent's memories in 16 slices of the id range, since an UNWIND
        that matches by id scans the table per row."""
        wanted = list(dict.fromkeys(ids))
        if len(wanted) <= _TEXT_LOOKUP_LIMIT:
            rows = self._point_lookups(wanted, "m.id, m.content, m.tags", agent_id)
            yield from ((r[0], r[1], list(r[2] or ())) for r in rows)
            return
        keep = set(wanted)
        bounds: list[str | None] = [None, *"123456789abcdef", None]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            where = " AND ".join(c for c, v in (("m.id >= $lo", lo), ("m.id < $hi", hi)) if v)
            params = {k: v for k, v in (("lo", lo), ("hi", hi)) if v}
            rows = self.read(
                f"MATCH (m:Memory) WHERE m.agent_id = $a AND {where} RETURN m.id, m.content, m.tags",
                {**params, "a": agent_id},
            )
            yield from ((r[0], r[1], list(r[2] or ())) for r in rows if r[0] in keep)

    def orders_memories(self, agent_id: str, order_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Order id -> the unexpired memories that mention it (or are tagged with it), oldest first."""
        rows = self.by_keys(
            f"MATCH (m:Memory)-[:MENTIONS]->(o:`Order` {{uid: $key}}) WHERE {LIVE} "
            f"RETURN o.id, {MEMORY_COLUMNS} ORDER BY m.created_at, m.id",
            [node_uid(agent_id, o) for o in order_ids], {"now": now},
        )
        return memories_by_key(rows)

    def count_memories(self, agent_id: str | None = None) -> int:
        if agent_id is None:
            return int(self.read("MATCH (m:Memory) RETURN count(m)")[0][0])
        return int(self.read("MATCH (m:Memory) WHERE m.agent_id = $a RETURN count(m)", {"a": agent_id})[0][0])

    def count_memories_by_agent(self) -> dict[str, int]:
        """Stored memories per agent (one aggregate over the agent_id column)."""
        return {r[0]: int(r[1]) for r in self.read("MATCH (m:Memory) RETURN m.agent_id, count(*)")}


def _customer_and_attrs_only(flt: RecallFilter) -> bool:
    """A customer filter whose other conditions are all on ranking attributes (``Attrs``)."""
    return flt.customer_id is not None and flt.session_id is None and not flt.memory_types and not flt.tags


def _filter_match(agent_id: str, flt: RecallFilter, params: dict[str, Any]) -> str:
    """The MATCH of a filtered memory scan: through its session and/or customer node.

    A pattern, not ``EXISTS { ... $cuid ... }``: Kùzu 0.11 cannot bind a parameter inside
    a subquery of a prepared statement, and every parameterised query is prepared
    (Connection._run; docs/kuzu-quirks.md #14).
    """
    path = "(m:Memory)"
    if flt.customer_id is not None:
        path = "(:Customer {uid: $cuid})<-[:ABOUT]-" + path
        params["cuid"] = node_uid(agent_id, flt.customer_id)
    if flt.session_id is not None:
        path += "-[:IN_SESSION]->(:Session {id: $sid})"
        params["sid"] = flt.session_id
    return f"MATCH {path}"


def _filter_clause(agent_id: str, flt: RecallFilter, now: datetime) -> tuple[str, dict[str, Any]]:
    where = ["m.agent_id = $a", LIVE]
    params: dict[str, Any] = {"a": agent_id, "now": now}
    if not flt.include_superseded:
        where.append("m.superseded_by IS NULL")
    if flt.since is not None:
        where.append("m.created_at >= $since")
        params["since"] = flt.since
    if flt.until is not None:
        where.append("m.created_at <= $until")
        params["until"] = flt.until
    if flt.min_importance is not None:
        where.append("m.importance >= $mi")
        params["mi"] = flt.min_importance
    if flt.memory_types:
        where.append("m.memory_type IN $types")
        params["types"] = list(flt.memory_types)
    # Tags ("any of") are checked by _tags_pass: Kùzu 0.11 cannot bind a parameter
    # inside a list comprehension.
    return " AND ".join(where), params


def _tags_pass(flt: RecallFilter, tags: list[str] | None) -> bool:
    return not flt.tags or bool(set(flt.tags).intersection(tags or ()))
