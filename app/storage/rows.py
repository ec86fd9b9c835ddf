"""Row mapping between the graph engines and the records: node keys, column lists, rows to records.

Both engines (``embedded/``, Kùzu; ``falkor/``, FalkorDB) lay records out alike: the same
labels, properties and keys, so one mapping serves both (FalkorDB keeps times as
microseconds since the epoch, which ``casegraph.times.utc`` reads back).

Owns how a record is laid out in the graph: the per-agent node key (``node_uid``), the
columns a memory is read with (``MEMORY_COLUMNS``, ``ATTR_COLUMNS``) and the conversions
between rows and ``Memory``, ``Session`` and ``Attrs``. No statements run here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from casegraph.domain.models import Entity, Memory, Session
from casegraph.storage.memories import Attrs
from casegraph.times import utc

MEMORY_COLUMNS = (
    "m.id, m.agent_id, m.content, m.importance, m.tags, m.memory_type, m.metadata, "
    "m.entities, m.created_at, m.updated_at, m.expires_at, m.session_id, m.customer_id, "
    "m.access_count, m.reinforce_count, m.last_seen_at, m.states, m.superseded_by, m.kind"
)


def node_uid(agent_id: str, key: str) -> str:
    """Primary key of a per-agent node (agent ids never contain '|')."""
    return f"{agent_id}|{key}"


# The columns behind Attrs, in its order (after the memory id).
ATTR_COLUMNS = "m.importance, m.created_at, m.expires_at, m.superseded_by, m.kind"


def attrs_from_row(row: Sequence[Any]) -> Attrs:
    return Attrs(float(row[0]), utc(row[1]), utc(row[2]), row[3], row[4])


# Stands for "none" in string columns that are written again after their row was created
# (Session.summary, Ticket.channel): a NULL inserted there corrupts the column, an empty
# string does not (docs/kuzu-quirks.md #2).
NO_TEXT = ""


def live_clause(var: str = "m") -> str:
    """Cypher: the memory ``var`` is live at ``$now`` (it never expires, or expires later),
    the rule ``casegraph.domain.models.is_live`` states for Python; every read applies it."""
    return f"({var}.expires_at IS NULL OR {var}.expires_at > $now)"


# The memory ``m`` is live at ``$now``.
LIVE = live_clause("m")


def entity_triples(entities: Iterable[Entity]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.value, e.key) for e in entities]


def entity_triples_json(encoded: str | None) -> list[tuple[str, str, str]]:
    return [(k, v, key) for k, v, key in json.loads(encoded or "[]")]


def memory_row(m: Memory) -> dict[str, Any]:
    return {
        "id": m.id,
        "agent_id": m.agent_id,
        "content": m.content,
        "importance": float(m.importance),
        "tags": list(m.tags),
        "memory_type": m.memory_type,
        "metadata": json.dumps(m.metadata, sort_keys=True),
        "entities": json.dumps([[e.kind, e.value, e.key] for e in m.entities]),
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "expires_at": m.expires_at,
        "session_id": m.session_id,
        "customer_id": m.customer_id,
        "access_count": int(m.access_count),
    }


def memory_from_row(r: list[Any]) -> Memory:
    return Memory(
        id=r[0],
        agent_id=r[1],
        content=r[2],
        importance=float(r[3]),
        tags=tuple(r[4] or ()),
        memory_type=r[5],
        metadata=json.loads(r[6]) if r[6] else {},
        entities=tuple(Entity(kind=k, value=v, key=key) for k, v, key in json.loads(r[7] or "[]")),
        created_at=utc(r[8]),
        updated_at=utc(r[9]),
        expires_at=utc(r[10]),
        session_id=r[11],
        customer_id=r[12],
        access_count=int(r[13] or 0),
        reinforce_count=int(r[14] or 0),
        last_seen_at=utc(r[15]),
        states=tuple(r[16] or ()),
        superseded_by=r[17],
        kind=r[18],
    )


def memories_by_key(rows: list[list[Any]]) -> dict[str, list[Memory]]:
    """Rows of (key, memory columns...) -> key -> its memories in row order, each once."""
    out: dict[str, list[Memory]] = {}
    seen: set[tuple[str, str]] = set()
    for r in rows:
        if (r[0], r[1]) not in seen:
            seen.add((r[0], r[1]))
            out.setdefault(r[0], []).append(memory_from_row(r[1:]))
    return out


def session_from_row(r: list[Any]) -> Session:
    return Session(
        id=r[0],
        agent_id=r[1],
        started_at=utc(r[2]),
        customer_id=r[3],
        ended_at=utc(r[4]),
        summary=r[5] or None,  # NO_TEXT
        metadata=json.loads(r[6]) if r[6] else {},
        memory_count=int(r[7]),
    )
