"""NodeReader: batch reads for many customers answer each customer as a read of that
customer alone does, past the store's few-keys limit too (real Kùzu, model, spaCy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.errors import CustomerNotFound, InvalidInput
from casegraph.services import Services

from tests.clock import FakeClock
from tests.conftest import make_settings

A = "bot"
CUSTOMERS = [f"cust-{i}" for i in range(18)]  # more than the store's few-keys limit (16)


@pytest.fixture(scope="module")
def services(embedder, extractor, tmp_path_factory):
    clock = FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    s = Services.open(make_settings(tmp_path_factory.mktemp("readers") / "data"),
                      embedder=embedder, extractor=extractor, clock=clock)
    for i, c in enumerate(CUSTOMERS):
        # Two sessions each, the second started at the same instant for even customers (ties by id).
        first = s.memories.session_start(A, c)
        s.memories.store(StoreRequest(agent_id=A, session_id=first.id, tags=(f"customer:{c}",),
                                      content=f"Ticket T-{900 + i} about order #{6000 + i}: refund please."))
        s.memories.session_end(first.id, "refund requested", agent_id=A)
        if i % 2:
            clock.advance(minutes=1)
        second = s.memories.session_start(A, c)
        s.memories.store(StoreRequest(agent_id=A, session_id=second.id, tags=(f"customer:{c}",),
                                      content=f"Is the refund for order #{6000 + i} through yet?"))
        clock.advance(minutes=1)
        s.tickets.update(A, f"T-{900 + i}", status="pending", note="waiting for the warehouse")
    yield s
    s.close()


def test_many_customers_read_as_each_alone(services):
    nodes = services.nodes
    for keys in (CUSTOMERS[:3], CUSTOMERS):
        timelines = nodes.timelines(A, keys)
        sessions = nodes.customers_sessions(A, keys)
        for c in keys:
            assert timelines[c] == nodes.timelines(A, [c])[c]
            assert sessions[c] == services.graph.list_sessions(A, customer_id=c)
            assert len(sessions[c]) == 2 and sessions[c][0].started_at >= sessions[c][1].started_at
        i = 7
        kinds = [e.kind for e in nodes.timelines(A, [f"cust-{i}"])[f"cust-{i}"]]
        assert kinds == ["session_started", "ticket_opened", "memory", "memory", "session_ended",
                         "session_started", "memory", "ticket_status"]


def test_timelines_page_and_refuse_what_the_one_customer_read_refused(services):
    nodes = services.nodes
    full = nodes.timelines(A, ["cust-1"])["cust-1"]
    assert nodes.timelines(A, ["cust-1"], limit=2)["cust-1"] == full[:2]
    since = full[3].at
    assert nodes.timelines(A, ["cust-1"], since=since)["cust-1"] == [e for e in full if e.at >= since]
    assert nodes.timelines(A, ["cust-1"], since=since + timedelta(days=1))["cust-1"] == []
    with pytest.raises(CustomerNotFound):
        nodes.timelines(A, ["cust-1", "nobody"])
    with pytest.raises(InvalidInput) as bad:
        nodes.timelines(A, ["cust-1"], limit=0)
    assert bad.value.code == "INVALID_LIMIT"
    with pytest.raises(CustomerNotFound):
        nodes.customer(A, "nobody")
    assert nodes.customer(A, "cust-1").id == "cust-1"
