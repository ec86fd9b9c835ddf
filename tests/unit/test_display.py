"""The explorer's display rule (domain/display.py): labels and API-named properties of stored nodes."""

from __future__ import annotations

from datetime import datetime

from casegraph.domain.display import LABEL_CHARS, shown
from casegraph.domain.ticket_models import NodeRef
from casegraph.storage.tickets import StoredNode

T = datetime(2025, 6, 30, 12, 0)  # naive UTC, as the store returns times


def test_a_long_memory_is_cut_for_its_label_and_kept_whole_in_its_properties():
    content = "x" * (LABEL_CHARS + 1)
    node = shown(StoredNode(NodeRef("memory", "m1"), "Memory",
                            {"content": content, "created_at": T, "importance": 0.5}))
    assert node.label == "x" * (LABEL_CHARS - 3) + "..."
    assert node.properties == {"content": content, "createdAt": "2025-06-30T12:00:00+00:00", "importance": 0.5}
    exact = shown(StoredNode(NodeRef("memory", "m2"), "Memory",
                             {"content": "y" * LABEL_CHARS, "created_at": T, "importance": 1.0}))
    assert exact.label == "y" * LABEL_CHARS


def test_each_kind_of_node_has_its_label_and_camel_case_properties():
    ticket = shown(StoredNode(NodeRef("ticket", "T-1"), "Ticket",
                              {"status": "open", "subject": "Late", "channel": "", "created_at": T}))
    assert (ticket.label, ticket.properties) == (
        "T-1", {"status": "open", "subject": "Late", "channel": None, "createdAt": "2025-06-30T12:00:00+00:00"})
    assert shown(StoredNode(NodeRef("order", "4521"), "Order", {})).label == "#4521"
    assert shown(StoredNode(NodeRef("customer", "c1"), "Customer", {"name": None})).label == "c1"
    assert shown(StoredNode(NodeRef("customer", "c1"), "Customer", {"name": "Ann"})).label == "Ann"
    session = shown(StoredNode(NodeRef("session", "s1"), "Session",
                               {"started_at": T, "ended_at": None, "summary": ""}))
    assert (session.label, session.properties) == (
        "session 2025-06-30", {"startedAt": "2025-06-30T12:00:00+00:00", "endedAt": None, "summary": None})
    entity = shown(StoredNode(NodeRef("entity", "email:a@b.c"), "Entity", {"kind": "email", "value": "a@b.c"}))
    assert (entity.label, entity.properties, entity.ref) == (
        "a@b.c", {"kind": "email", "value": "a@b.c"}, NodeRef("entity", "email:a@b.c"))
