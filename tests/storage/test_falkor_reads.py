"""What the FalkorDB read path relies on, on a real server: no cache between processes,
and statements that start from an index.

The interface tests (test_graph_store.py, test_batch_reads.py) check the same answers as
the embedded engine; these check what only this engine has to get right: several store
objects (processes) share one namespace, so a read must see another's write at once, and
FalkorDB 4's planner scans every memory when a memory's WHERE sits in the MATCH that
names the indexed node.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from casegraph.domain.models import RecallFilter, Session
from casegraph.storage.search import vector_key

from tests.conftest import falkor_server
from tests.storage.backends import falkor, open_store
from tests.storage.records import NOW, A, make_memory, new_id, rec

pytestmark = pytest.mark.skipif(not falkor(), reason="the FalkorDB engine (CASEGRAPH_TEST_STORE=falkordb)")


@pytest.fixture
def two_processes():
    """Two store objects on one namespace, as two casegraph processes would hold them."""
    from casegraph.storage.falkor.store import FalkorStore

    url = falkor_server().namespace_url()
    first, second = FalkorStore(url, dimension=4), FalkorStore(url, dimension=4)
    yield first, second
    first.drop_namespace()
    first.close()
    second.close()


def test_ranking_attributes_are_read_from_the_server_not_kept(two_processes):
    first, second = two_processes
    m = make_memory("a memory another process changes", importance=0.25)
    first.write_memories([rec(m)])
    key = np.asarray([vector_key(m.id), vector_key(new_id())], dtype=np.uint64)
    assert second.cached_attrs(A, [m.id])[m.id].importance == 0.25
    assert second.cached_columns(A, key).known.tolist() == [True, False]

    first.write(A, "MATCH (m:Memory {id: $id}) SET m.importance = 0.75, m.superseded_by = 'newer'", {"id": m.id})
    assert second.memory_attrs(A, [m.id])[m.id][::3] == (0.75, "newer")
    assert second.cached_attrs(A, [m.id])[m.id][::3] == (0.75, "newer")
    cols = second.cached_columns(A, key)
    assert cols.importance[0] == 0.75 and cols.superseded.tolist() == [True, False]

    first.delete_memories(A, [m.id])
    assert second.cached_attrs(A, [m.id]) == {}
    assert not second.cached_columns(A, key).known.any()
    assert second.load_attrs() == {} and second.count_memories() == 0


def test_reads_that_filter_memories_start_from_the_named_node(tmp_path):
    from casegraph.storage.falkor.connection import encode

    store = open_store(tmp_path)
    try:
        session = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane")
        store.create_session(session)
        store.write_memories([
            rec(make_memory(f"note {i}", session_id=session.id, created_at=NOW - timedelta(minutes=i)),
                customer_ids=("jane",), orders=("4521",))
            for i in range(5)
        ])
        sent: list[tuple[str, dict]] = []
        store._tracer = lambda query, params: sent.append((query, params or {}))
        assert len(store.orders_memories(A, ["4521"], NOW)["4521"]) == 5
        assert len(store.customer_memories(A, "jane", NOW)) == 5
        assert len(store.customers_memories(A, ["jane"], NOW)["jane"]) == 5
        for flt in (RecallFilter(customer_id="jane"), RecallFilter(session_id=session.id),
                    RecallFilter(customer_id="jane", session_id=session.id, tags=("x",))):
            assert store.filtered_attrs(A, flt, NOW, 100) is not None
        store._tracer = None
        assert len(sent) == 6
        for query, params in sent:
            plan = str(store._graph(A).explain(query, encode(params)))
            assert "Label Scan | (m:Memory)" not in plan, (query, plan)
            assert "Node By Index Scan" in plan, (query, plan)
    finally:
        store.close()
