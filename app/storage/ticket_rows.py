"""Row mapping for tickets, shared by both engines: the node kinds an analyst walks, the
columns a ticket is read with, and rows to ``Ticket``, ``Relation``, ``StoredNode`` and
``GraphEdge``.

Both engines (``embedded/tickets.py``, ``falkor/tickets.py``) lay tickets out alike: the
labels and properties of graph_schema/001_initial.cypher and 003_tickets.cypher, keys of
tickets, customers, orders and entities as ``node_uid`` (``"<agent>|<key>"``), one RELATED
edge per pair stored from the smaller ticket id to the larger, its reasons as three
parallel lists (texts, kinds, weights). No statements run here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from casegraph.domain.ticket_models import GraphEdge, NodeRef, Reason, Relation, Ticket
from casegraph.storage.rows import node_uid
from casegraph.storage.tickets import StoredNode
from casegraph.times import utc

# Relationship types an analyst walks (HAS_EVENT only leads to a ticket's own history).
WALKABLE = "ABOUT|MENTIONS|IN_SESSION|PLACED|RAISED|HAD_SESSION|CONCERNS|RELATED"
# Entities that connect everything to everything ("$20", "yesterday") are not walked.
NOISE_KINDS = ["money", "date"]

TICKET_COLUMNS = "t.id, t.agent_id, t.status, t.subject, t.channel, t.created_at, t.updated_at"
# label -> (node kind, primary-key property, whether the key carries the agent prefix)
NODE_LABELS = {
    "Ticket": ("ticket", "uid", True),
    "Customer": ("customer", "uid", True),
    "Order": ("order", "uid", True),
    "Entity": ("entity", "uid", True),
    "Memory": ("memory", "id", False),
    "Session": ("session", "id", False),
}
KIND_LABEL = {kind: label for label, (kind, _, _) in NODE_LABELS.items()}
# The properties a StoredNode carries (those its label lacks are None).
NODE_PROPS = (
    "status, subject, channel, created_at, name, content, importance, started_at, ended_at, "
    "summary, kind, key, value"
).split(", ")

# Shared-key patterns of TicketStore.shared_keys: k = the shared node, {t} = the ticket.
SHARED_KEY_PATTERNS = {
    "order": "({t}:Ticket)-[:CONCERNS]->(k:`Order`)",
    "customer": "(k:Customer)-[:RAISED]->({t}:Ticket)",
    "entity": "({t}:Ticket)<-[:MENTIONS]-(:Memory)-[:MENTIONS]->(k:Entity)",
}
SHARED_KEY_FILTERS = {"order": "", "customer": "", "entity": "AND k.kind IN $kinds"}
# (kind, key, shown value) of a shared key.
SHARED_KEY_COLUMNS = {
    "order": "'order', k.id, k.id AS shown",
    "customer": "'customer', k.id, coalesce(k.name, k.id)",
    "entity": "k.kind, k.key, k.value",
}


def quoted(label: str) -> str:
    """``label`` as a statement names it (``Order`` is a keyword)."""
    return "`Order`" if label == "Order" else label


def node_match(agent_id: str, ref: NodeRef) -> tuple[str, str, str]:
    """(label, key property, key value) that finds ``ref`` for this agent."""
    label = KIND_LABEL[ref.kind]
    _, prop, prefixed = NODE_LABELS[label]
    return label, prop, node_uid(agent_id, ref.key) if prefixed else ref.key


def node_ref(label: str, uid: str | None, id_: str | None) -> NodeRef:
    """The reference of a node read as (label, uid, id)."""
    kind, _, prefixed = NODE_LABELS[label]
    if prefixed:
        return NodeRef(kind, uid.split("|", 1)[1])
    return NodeRef(kind, id_)


def props_columns(var: str) -> str:
    """The columns of ``NODE_PROPS`` for the node ``var``."""
    return ", ".join(f"{var}.{p}" for p in NODE_PROPS)


def stored_node(label: str, uid: str | None, id_: str | None, props: dict[str, Any]) -> StoredNode:
    return StoredNode(ref=node_ref(label, uid, id_), table=label, properties=props)


def node_from_row(r: Sequence[Any]) -> StoredNode:
    """A node read as (label, uid, id, the ``NODE_PROPS`` columns)."""
    label, uid, id_, *values = r
    return stored_node(label, uid, id_, dict(zip(NODE_PROPS, values, strict=True)))


def graph_edge(src: NodeRef, dst: NodeRef, label: str, weight: Any, reasons: Any) -> GraphEdge:
    return GraphEdge(
        source=src, target=dst, type=label,
        weight=float(weight) if weight is not None else None,
        reasons=tuple(reasons or ()),
    )


def ticket_from_row(r: Sequence[Any]) -> Ticket:
    """A ticket read with ``TICKET_COLUMNS``."""
    return Ticket(
        id=r[0], agent_id=r[1], status=r[2] or "open", subject=r[3], channel=r[4] or None,
        created_at=utc(r[5]), updated_at=utc(r[6]),
    )


def grouped(rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """Rows of (key, value) -> key -> its values in row order."""
    out: dict[str, list[Any]] = {}
    for key, value in rows:
        out.setdefault(key, []).append(value)
    return out


def relation_from_row(ticket: str, other: str, weight: Any, texts: Any, kinds: Any, parts: Any) -> Relation:
    """A RELATED edge read as (ticket, other, weight, reasons, kinds, parts)."""
    reasons = tuple(Reason(k, s, float(p)) for s, k, p in zip(texts, kinds, parts, strict=True))
    return Relation(ticket, other, float(weight), reasons)


def relation_row(agent_id: str, rel: Relation) -> dict[str, Any]:
    """A RELATED edge to write: ``f`` and ``t`` the uids of its ends, in a fixed order."""
    a, b = sorted((rel.a, rel.b))  # one edge per pair, stored in a fixed direction
    return {
        "f": node_uid(agent_id, a),
        "t": node_uid(agent_id, b),
        "w": float(rel.weight),
        "reasons": [r.text for r in rel.reasons],
        "kinds": [r.kind for r in rel.reasons],
        "parts": [float(r.weight) for r in rel.reasons],
    }
