"""How a node of the graph is shown to a person exploring it: its label and properties.

Owns the display rule of the explorer: a memory's label is its content cut to 60
characters, an order's is ``#key``, a session's its start date; properties are named as
the API names them (camelCase) with ISO times. Storage returns nodes as stored
(``StoredNode``); the explorer (explore.py) shows them through ``shown``.
"""

from __future__ import annotations

from casegraph.domain.ticket_models import GraphNode
from casegraph.storage.tickets import StoredNode
from casegraph.times import iso, utc

# A memory's label: its content up to this many characters (longer ones end in "...").
LABEL_CHARS = 60


def shown(node: StoredNode) -> GraphNode:
    """``node`` as the explorer shows it."""
    ref, p = node.ref, node.properties
    if node.table == "Ticket":
        props = {"status": p["status"], "subject": p["subject"], "channel": p["channel"] or None,
                 "createdAt": iso(p["created_at"])}
        text = ref.key
    elif node.table == "Customer":
        props, text = {"name": p["name"]}, p["name"] or ref.key
    elif node.table == "Order":
        props, text = {}, f"#{ref.key}"
    elif node.table == "Memory":
        content = p["content"] or ""
        props = {"content": content, "createdAt": iso(p["created_at"]), "importance": p["importance"]}
        text = content if len(content) <= LABEL_CHARS else content[: LABEL_CHARS - 3] + "..."
    elif node.table == "Session":
        props = {"startedAt": iso(p["started_at"]), "endedAt": iso(p["ended_at"]), "summary": p["summary"] or None}
        started = utc(p["started_at"])
        text = f"session {started:%Y-%m-%d}" if started else "session"
    else:  # Entity
        props, text = {"kind": p["kind"], "value": p["value"]}, p["value"] or ref.key
    return GraphNode(ref=ref, label=text, properties=props)
