"""The FalkorDB side of `casegraph reembed` when the vector size changes: the old vector
index goes at the start, one of the new size comes at the end, vectors set over others
take (FalkorDB can ignore such a SET), tickets are marked and the run's fields dropped.
The whole command is tested through the interfaces in tests/embedding/test_reembed.py."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.storage.space import EMBEDDING_KEY, REEMBED_KEY, VectorSpace

from tests.storage.backends import falkor, open_store

pytestmark = pytest.mark.skipif(not falkor(), reason="FalkorDB's reembed steps (CASEGRAPH_TEST_STORE=falkordb)")


def test_a_new_vector_size_gets_a_new_index_and_every_vector_is_replaced(tmp_path):
    from casegraph.storage.falkor import reembed as server

    store = open_store(tmp_path, dimension=3)
    try:
        store.execute("bot", "CREATE (:Memory {id: 'a', content: 'x', embedding: vecf32([1.0, 0, 0])}), "
                             "(:Memory {id: 'b', content: 'y', embedding: vecf32([0, 1.0, 0])}), "
                             "(:Ticket {uid: 'bot|T-1', id: 'T-1'})")
        target = VectorSpace("other-model", 4)
        server.record_target(store, target, new_size=True)
        assert store.get_meta(REEMBED_KEY) == target.to_json()
        assert server.memory_ids(store, "bot") == ["a", "b"]
        assert server.memory_contents(store, "bot", ["a", "b", "gone"]) == {"a": "x", "b": "y"}
        new = np.asarray([[0.5, 0.5, 0, 0], [0, 0, 0.6, 0.8]], dtype=np.float32)
        server.write_batch(store, "bot", ["a", "b"], new, "b")
        assert server.last_done(store, "bot") == "b"
        server.finish(store, target)

        rows = store.read("bot", "MATCH (m:Memory) RETURN m.id, m.embedding ORDER BY m.id")
        assert [i for i, _ in rows] == ["a", "b"]
        assert np.asarray([e for _, e in rows], dtype=np.float32).tobytes() == new.tobytes()  # exact
        nearest = store.read("bot", "CALL db.idx.vector.queryNodes('Memory', 'embedding', 1, vecf32([0, 0, 0.6, 0.8])) "
                                    "YIELD node RETURN node.id")
        assert nearest == [["b"]]  # the index is of the new size
        assert store.read("bot", "MATCH (t:Ticket) RETURN t.refresh_token IS NOT NULL") == [[True]]
        assert store.get_meta(EMBEDDING_KEY) == target.to_json() and store.get_meta(REEMBED_KEY) is None
        assert server.last_done(store, "bot") is None
    finally:
        store.close()
