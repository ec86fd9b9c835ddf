"""The embedded engine's own behaviour, below the storage interfaces: Kùzu in tmp_path.

Migrations, opening and locking the data directory, edge keys and the staging join,
prepared statements, the row-modes planner, buffer-pool and checkpoint policy, and the
translation of Kùzu's errors. What any engine must do is tested through the interfaces
in test_graph_store.py; these tests use Cypher and the engine's internals on purpose.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from casegraph import graph_schema
from casegraph.domain.links import linked_memories
from casegraph.domain.models import Entity, RecallFilter, Session
from casegraph.errors import ConfigurationError, ModelMismatch, StorageError
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.rows import node_uid
from casegraph.storage.search import NodeRefs, vector_key

from tests.storage.records import (
    NOW,
    A,
    B,
    filter_world,
    make_memory,
    new_id,
    rec,
    write_linked_memory,
)

# The Kùzu engine itself: the FalkorDB pass has tests of its own for that engine.
pytestmark = pytest.mark.embedded_only


def count(store: GraphStore, query: str, params=None) -> int:
    return int(store.read(query, params)[0][0])


@pytest.fixture
def store(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    yield s
    s.close()


# -- migrations and opening --------------------------------------------------------------
def test_migrations_apply_from_empty_and_are_recorded(tmp_path):
    names = [m.name for m in graph_schema.migrations()]
    assert names == sorted(names) and len(names) >= 2
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        assert s.applied_migrations == names
        assert s.schema_version == names[-1]
        recorded = s.read("MATCH (x:Migration) RETURN x.name, x.applied_at ORDER BY x.name")
        assert [r[0] for r in recorded] == names
        assert all(isinstance(r[1], datetime) for r in recorded)
        tables = {r[0] for r in s.read("CALL show_tables() RETURN name")}
        for table in ("Memory", "Customer", "Order", "Ticket", "Session", "Entity", "Meta", "ABOUT",
                      "MENTIONS", "IN_SESSION", "PLACED", "RAISED", "HAD_SESSION", "CONCERNS"):
            assert table in tables
        # 002 created Kùzu's full-text index and 010 dropped it (keywords are in app/storage/embedded/keywords.py).
        assert not [r for r in s.read("CALL show_indexes() RETURN *") if "memory_fts" in map(str, r)]
    finally:
        s.close()


def test_the_checkpoint_threshold_is_the_one_asked_for(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64, checkpoint_wal_mb=3)
    try:
        assert s.read("CALL current_setting('checkpoint_threshold') RETURN *") == [[str(3 * 1024 * 1024)]]
    finally:
        s.close()


def test_reopening_applies_nothing_and_keeps_the_version(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    version = s.schema_version
    s.write_memories([rec(make_memory("kept across reopen"))])
    s.close()
    s2 = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        assert s2.applied_migrations == []
        assert s2.schema_version == version
        assert count(s2, "MATCH (x:Migration) RETURN count(x)") == len(graph_schema.migrations())
        assert s2.count_memories() == 1
    finally:
        s2.close()


def test_migrate_is_idempotent(store):
    assert store.migrate() == []
    assert count(store, "MATCH (x:Migration) RETURN count(x)") == len(graph_schema.migrations())


def edge_keys(store: GraphStore) -> list[tuple[str, int | None]]:
    return sorted(
        (r[0], r[1]) for r in store.read("MATCH (m:Memory)-[e:ABOUT|MENTIONS]->() RETURN m.id, e.k")
    )


def test_about_and_mentions_edges_carry_their_memorys_key(store):
    ms = [make_memory("order 4521 for jane"), make_memory("custom id", id="not-a-uuid:7")]
    store.write_memories([
        rec(ms[0], customer_ids=("jane",), orders=("4521",), tickets=("T-1",),
            others=(Entity("email", "j@example.com", "j@example.com"),)),
        rec(ms[1], customer_ids=("jane",)),
    ])
    keys = edge_keys(store)
    assert len(keys) == 5
    assert all(k == vector_key(m) for m, k in keys)


def all_edges(store: GraphStore) -> dict[str, list]:
    q = {
        "ABOUT": "MATCH (a:Memory)-[e:ABOUT]->(b:Customer) RETURN a.id, b.uid, e.k",
        "MENTIONS": "MATCH (a:Memory)-[e:MENTIONS]->(b) RETURN a.id, b.uid, e.k",
        "IN_SESSION": "MATCH (a:Memory)-[:IN_SESSION]->(b:Session) RETURN a.id, b.id",
        "PLACED": "MATCH (a:Customer)-[:PLACED]->(b:`Order`) RETURN a.uid, b.uid",
        "RAISED": "MATCH (a:Customer)-[:RAISED]->(b:Ticket) RETURN a.uid, b.uid",
        "CONCERNS": "MATCH (a:Ticket)-[:CONCERNS]->(b:`Order`) RETURN a.uid, b.uid",
    }
    return {rel: sorted(map(tuple, store.read(query))) for rel, query in q.items()}


def test_many_edges_are_written_through_the_staging_join_exactly_as_point_statements_write_them(
    tmp_path, monkeypatch
):
    import casegraph.storage.embedded.batching

    def world(directory, stage_min):
        monkeypatch.setattr(casegraph.storage.embedded.batching, "STAGE_MIN_EDGES", stage_min)
        s = GraphStore(directory, buffer_pool_mb=64)
        session = Session(id="s-1", agent_id=A, started_at=NOW, customer_id="c0")
        records = [
            rec(make_memory(f"memory {i}", id=f"00000000-0000-4000-8000-{i:012d}",
                            session_id="s-1" if i % 2 else None),
                customer_ids=(f"c{i % 4}",), orders=(str(4000 + i % 7),), tickets=(f"T-{i % 5}",),
                others=(Entity("email", f"u{i % 3}@example.com", f"u{i % 3}@example.com"),))
            for i in range(40)
        ]
        s.write_memories(records[:20], [session])
        s.write_memories(records[20:])  # onto existing nodes: MERGE keeps one edge a pair
        return s

    points, staged = world(tmp_path / "points", 1000), world(tmp_path / "staged", 0)
    try:
        want = all_edges(points)
        assert len(want["ABOUT"]) == 40 and len(want["IN_SESSION"]) == 20 and len(want["PLACED"]) == 28
        assert all(k == vector_key(m) for m, _, k in want["ABOUT"] + want["MENTIONS"])
        assert all_edges(staged) == want
        assert staged.read("MATCH (x:EdgeStage) RETURN count(x)") == [[0]]
    finally:
        points.close()
        staged.close()


def test_migration_005_keys_the_edges_of_existing_memories(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    ms = [make_memory(f"memory {i}") for i in range(30)] + [make_memory("custom", id="legacy-id-1")]
    s.write_memories([rec(m, customer_ids=(f"c{i % 3}",), orders=(str(4000 + i),)) for i, m in enumerate(ms)])
    # As a data directory written before 005: no keys on the edges, 005 not recorded.
    with s.transaction() as run:
        run("MATCH ()-[e:ABOUT|MENTIONS]->() SET e.k = NULL")
        run("MATCH (x:Migration {name: '005_edge_keys'}) DELETE x")
    assert {k for _, k in edge_keys(s)} == {None}
    s.close()
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        assert s.applied_migrations == ["005_edge_keys"]
        keys = edge_keys(s)
        assert len(keys) == 62 and all(k == vector_key(m) for m, k in keys)
        tables = {r[0] for r in s.read("CALL show_tables() RETURN name")}
        assert "EdgeKeyBackfill" not in tables
    finally:
        s.close()


def test_migration_010_drops_the_full_text_index_of_an_existing_store(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    # As a data directory written before 010: Kùzu's full-text index over memories, filled.
    s._run(s._writer, "CALL CREATE_FTS_INDEX('Memory', 'memory_fts', ['content'], stemmer := 'english')")
    with s.transaction() as run:
        run("MATCH (x:Migration {name: '010_drop_keyword_index'}) DELETE x")
    ms = [make_memory(f"parcel number {i} arrived damaged") for i in range(5)]
    for m in ms:
        s.write_memories([rec(m)])
    assert len(s.read("CALL QUERY_FTS_INDEX('Memory', 'memory_fts', 'parcel') RETURN node.id")) == 5
    s.close()
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        assert s.applied_migrations == ["010_drop_keyword_index"]
        assert not [r for r in s.read("CALL show_indexes() RETURN *") if "memory_fts" in map(str, r)]
        assert set(s.get_memories(A, [m.id for m in ms])) == {m.id for m in ms}
        s.write_memories([rec(make_memory("written after 010"))])
        s.delete_memories(A, [ms[0].id])
        assert s.count_memories(A) == 5
    finally:
        s.close()


# Regression: a new database's log held 002's index creation and 010's drop, which Kùzu
# 0.11.3 could not replay: a crash before the first checkpoint left a store that would not open.
def test_a_crash_image_of_a_new_store_opens(tmp_path):
    import shutil

    s = GraphStore(tmp_path / "live", buffer_pool_mb=64)
    try:
        m = make_memory("written before any checkpoint")
        s.write_memories([rec(m)])
        shutil.copytree(tmp_path / "live", tmp_path / "crash", ignore=shutil.ignore_patterns(".casegraph.lock"))
    finally:
        s.close()
    crashed = GraphStore(tmp_path / "crash", buffer_pool_mb=64)
    try:
        assert set(crashed.get_memories(A, [m.id])) == {m.id}
    finally:
        crashed.close()


def test_split_statements_drops_comments_and_blank_parts():
    text = "// a comment\nCREATE X;\n\n// another\nCREATE Y(a INT64);\n;\n"
    assert graph_schema.split_statements(text) == ("CREATE X", "CREATE Y(a INT64)")


def test_the_same_path_cannot_be_opened_twice(tmp_path):
    s = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        with pytest.raises(ConfigurationError) as info:
            GraphStore(tmp_path, buffer_pool_mb=64)
        assert info.value.code == "CONFIGURATION_ERROR"
        assert "already open" in info.value.message
        # The refused second open must not have released the first one's claim.
        with pytest.raises(ConfigurationError):
            GraphStore(tmp_path, buffer_pool_mb=64)
    finally:
        s.close()
    # After a close the path can be opened again.
    GraphStore(tmp_path, buffer_pool_mb=64).close()


def test_different_paths_open_side_by_side(tmp_path):
    a = GraphStore(tmp_path / "one", buffer_pool_mb=64)
    b = GraphStore(tmp_path / "two", buffer_pool_mb=64)
    try:
        a.write_memories([rec(make_memory("only in one"))])
        assert a.count_memories() == 1 and b.count_memories() == 0
    finally:
        a.close()
        b.close()


# Regression: a second close() of a stale store used to drop the path from _OPEN_PATHS while
# another store had it open, letting a third store open the same database.
def test_closing_a_stale_store_again_keeps_the_guard_of_the_open_one(tmp_path):
    first = GraphStore(tmp_path, buffer_pool_mb=64)
    first.close()
    second = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        first.close()  # e.g. a teardown closing everything it ever opened
        with pytest.raises(ConfigurationError):
            third = GraphStore(tmp_path, buffer_pool_mb=64)
            third.close()
    finally:
        second.close()


# -- embedding model guard ---------------------------------------------------------------
def test_check_vector_space_records_then_accepts_the_same_model(tmp_path):
    from types import SimpleNamespace

    from casegraph.storage.space import check_vector_space

    def emb(model, dim, runtime="torch", quantization="fp32"):
        return SimpleNamespace(model_id=model, dimension=dim, runtime=runtime, quantization=quantization)

    s = GraphStore(tmp_path, buffer_pool_mb=64)
    assert s.get_meta("embedding_model") is None
    check_vector_space(s, emb("mini-lm", 4))
    assert s.get_meta("embedding_model") is not None
    check_vector_space(s, emb("mini-lm", 4))  # same again: fine
    s.close()
    s2 = GraphStore(tmp_path, buffer_pool_mb=64)
    try:
        check_vector_space(s2, emb("mini-lm", 4))  # persisted across reopen
        with pytest.raises(ModelMismatch) as info:
            check_vector_space(s2, emb("other-model", 4))
        assert info.value.code == "MODEL_MISMATCH"
        assert "mini-lm" in info.value.message and "other-model" in info.value.message
        with pytest.raises(ModelMismatch):
            check_vector_space(s2, emb("mini-lm", 8))
        with pytest.raises(ModelMismatch) as info:
            check_vector_space(s2, emb("mini-lm", 4, "onnx-int8", "int8-dynamic"))
        assert "onnx-int8" in info.value.message and "casegraph reembed" in info.value.message
        assert isinstance(info.value, ConfigurationError)
        # ONNX fp32 computes PyTorch's vectors: it opens the directory, and is not recorded.
        check_vector_space(s2, emb("mini-lm", 4, "onnx", "fp32"))
        # A refusal does not overwrite what was recorded.
        assert '"runtime": "torch"' in s2.get_meta("embedding_model")
        check_vector_space(s2, emb("mini-lm", 4))
    finally:
        s2.close()


def test_a_failed_transaction_rolls_back(store):
    with pytest.raises(ValueError, match="boom"):
        with store.transaction() as run:
            run("CREATE (:Meta {key: 'x', value: 'y'})")
            raise ValueError("boom")
    assert store.get_meta("x") is None


def test_kuzu_errors_become_storage_errors(store):
    with pytest.raises(StorageError) as info:
        store.read("MATCH (x:NoSuchTable) RETURN x")
    assert isinstance(info.value.__cause__, RuntimeError)


# -- memory texts (what the keyword index is rebuilt from) ------------------------------
def test_memory_texts_by_point_lookups_and_by_scan(store, monkeypatch):
    import casegraph.storage.embedded.memories

    mems = [make_memory(f"memory number {i}", tags=(f"customer:c{i}",)) for i in range(6)]
    other = make_memory("another agent's memory", agent=B)
    store.write_memories([rec(m) for m in [*mems, other]])
    wanted = [m.id for m in mems[:4]] + [other.id, new_id()]
    expected = {m.id: (m.content, [f"customer:c{i}"]) for i, m in enumerate(mems[:4])}
    looked_up = {i: (c, t) for i, c, t in store.memory_texts(A, wanted)}
    monkeypatch.setattr(casegraph.storage.embedded.memories, "_TEXT_LOOKUP_LIMIT", 2)
    scanned = {i: (c, t) for i, c, t in store.memory_texts(A, wanted)}
    assert looked_up == scanned == expected


def test_a_parameterised_query_is_prepared_once_per_connection(store):
    # Kùzu 0.11 leaks each statement it prepares: a query run many times with other
    # parameters must reuse one prepared statement, not prepare a new one per call.
    query = "MATCH (c:Customer) WHERE c.uid = $u RETURN c.id"
    for i in range(50):
        store.read(query, {"u": f"{A}|nobody-{i}"})
    statements = store._reader()._casegraph_statements
    assert list(statements).count(query) == 1
    assert len(statements) == 1
    with store.transaction() as run:
        for i in range(20):
            run("MATCH (c:Customer) WHERE c.uid = $u RETURN c.id", {"u": f"x{i}"})
    assert list(store._writer._casegraph_statements).count(query) == 1


# -- many rows: one UNWIND or point statements, whichever measured cheaper -----------------
def test_row_modes_measure_both_ways_then_run_the_cheaper_and_probe_again():
    from casegraph.storage.embedded.batching import PROBE_EVERY, RowModes

    modes = RowModes()
    assert modes.plan("body") == ("point", True)  # first: a sample runs as one UNWIND
    modes.record("body", "unwind", 32, 0.032)  # 1 ms a row
    modes.record("body", "point", 468, 0.1404)  # 0.3 ms a row
    plans = [modes.plan("body") for _ in range(2 * PROBE_EVERY)]
    assert {mode for mode, _ in plans} == {"point"}
    assert sum(probe for _, probe in plans) == 2  # the other way is sampled now and then
    for _ in range(10):  # the tables changed: UNWIND got cheaper
        modes.record("body", "unwind", 32, 0.0032)
    assert modes.plan("body")[0] == "unwind"
    assert modes.plan("other body") == ("point", True)  # each body on its own


def test_key_modes_measure_points_a_key_and_joins_a_call_then_run_the_cheaper():
    from casegraph.storage.embedded.batching import JOIN_PROBE_EVERY, PROBE_EVERY, KeyModes

    modes = KeyModes()
    assert modes.plan("q", 100) == ("join", True)  # nothing known: the first keys as points
    modes.record("q", "point", 16, 0.016)  # 1 ms a key
    assert modes.plan("q", 100) == ("join", False)  # the join is not measured yet
    modes.record("q", "join", 84, 0.150)  # 150 ms a call, however many keys
    assert modes.plan("q", 100)[0] == "point" and modes.plan("q", 400)[0] == "join"
    plans = [modes.plan("q", 100) for _ in range(2 * PROBE_EVERY)]
    assert sum(probe for _, probe in plans) == 2  # the other way is tried now and then
    # While joins win, the points are measured more often (a probe costs a few of them).
    plans = [modes.plan("q", 400) for _ in range(4 * JOIN_PROBE_EVERY)]
    assert {mode for mode, _ in plans} == {"join"} and sum(probe for _, probe in plans) == 4
    assert modes.plan("other", 100) == ("join", True)  # each query on its own


@pytest.mark.parametrize("plan", [("join", True), ("join", False), ("point", True), ("point", False)])
def test_by_keys_gives_the_same_rows_whichever_way_it_runs(store, monkeypatch, plan):
    customers = [{"uid": f"{A}|c{i}", "a": A, "id": f"c{i}", "t": NOW} for i in range(40)]
    with store.transaction() as run:
        run.rows("MERGE (n:Customer {uid: r.uid}) ON CREATE SET n.agent_id = r.a, n.id = r.id, n.created_at = r.t",
                 customers)
    planned = []
    monkeypatch.setattr(store.key_modes, "plan", lambda query, n: planned.append(n) or plan)
    keys = [c["uid"] for c in customers] + [f"{A}|nobody", customers[0]["uid"]]
    query = "MATCH (c:Customer {uid: $key}) RETURN c.uid, c.id"
    rows = store.by_keys(query, keys, measured=True)
    assert sorted(map(tuple, rows)) == sorted((c["uid"], c["id"]) for c in customers)
    assert planned == [41]
    # Unmeasured (the API's reads): a fixed rule, the same rows, the modes not asked.
    assert sorted(map(tuple, store.by_keys(query, keys))) == sorted(map(tuple, rows)) and planned == [41]


@pytest.mark.parametrize("plan", [("unwind", False), ("point", False), ("point", True), ("unwind", True)])
def test_many_rows_give_the_same_graph_either_way(store, monkeypatch, plan):
    customers = [{"uid": f"{A}|c{i}", "a": A, "id": f"c{i}", "t": NOW} for i in range(100)]
    orders = [{"uid": f"{A}|{1000 + i}", "a": A, "id": str(1000 + i), "t": NOW} for i in range(100)]
    with store.transaction() as run:
        for label, nodes in (("Customer", customers), ("`Order`", orders)):
            run.rows(f"MERGE (n:{label} {{uid: r.uid}}) ON CREATE SET n.agent_id = r.a, n.id = r.id, n.created_at = r.t",
                     nodes)
    monkeypatch.setattr(store.row_modes, "plan", lambda body: plan)
    pairs = [{"f": c["uid"], "t": o["uid"]} for c, o in zip(customers, orders, strict=True)]
    for _ in range(2):  # MERGE: a second pass adds nothing
        with store.transaction() as run:
            run.rows("MATCH (a:Customer {uid: r.f}), (b:`Order` {uid: r.t}) MERGE (a)-[:PLACED]->(b)", pairs)
    rows = store.read("MATCH (a:Customer)-[:PLACED]->(b:`Order`) RETURN a.id, b.id ORDER BY a.id")
    assert sorted(map(tuple, rows)) == sorted((c["id"], o["id"]) for c, o in zip(customers, orders, strict=True))


# -- a buffer pool full of changes --------------------------------------------------------
POOL_FULL = "Buffer manager exception: Unable to allocate memory! The buffer pool is full and no memory could be freed!"


def test_kuzus_full_buffer_pool_is_told_apart_from_other_failures():
    from casegraph.errors import StorageFull
    from casegraph.storage.embedded.connection import translated

    with pytest.raises(StorageFull, match="buffer pool is full") as full:
        with translated("a write"):
            raise RuntimeError(POOL_FULL)
    assert full.value.code == "STORAGE_FULL" and isinstance(full.value, StorageError)
    with pytest.raises(StorageError) as other:
        with translated("a read"):
            raise RuntimeError("Binder exception: Table Nope does not exist.")
    assert type(other.value) is StorageError


def test_a_transaction_that_fills_the_pool_writes_nothing_and_checkpoints_on_its_way_out(store):
    from casegraph.errors import StorageFull

    m = make_memory("kept out")
    with pytest.raises(StorageFull) as full:
        with store.transaction() as run:
            run("CREATE (:Memory {id: $id, agent_id: $a})", {"id": m.id, "a": A})
            raise StorageFull(POOL_FULL)  # what Kùzu raised mid-write
    assert full.value.checkpointed is True and store.full_checkpoints == 1
    assert count(store, "MATCH (m:Memory) RETURN count(*)") == 0
    store.write_memories([rec(make_memory("the next write goes through"))])
    assert count(store, "MATCH (m:Memory) RETURN count(*)") == 1


def test_a_read_or_write_that_found_the_pool_full_runs_once_more_after_a_checkpoint(store):
    from casegraph.errors import StorageFull

    calls = []

    def read_once_full():
        calls.append(store.full_checkpoints)
        if len(calls) == 1:
            raise StorageFull(POOL_FULL)
        return store.read("MATCH (m:Memory) RETURN count(*)")

    assert store.once_more_when_full(read_once_full) == [[0]]
    assert calls == [0, 1]  # the second try came after the checkpoint

    def write_always_full():
        with store.transaction() as run:
            run("CREATE (:Memory {id: $id, agent_id: $a})", {"id": make_memory("x").id, "a": A})
            raise StorageFull(POOL_FULL)

    with pytest.raises(StorageFull):
        store.once_more_when_full(write_always_full)  # twice, then the caller is told
    assert count(store, "MATCH (m:Memory) RETURN count(*)") == 0


def test_no_second_try_after_a_checkpoint_that_failed(store):
    from casegraph.errors import StorageFull

    calls = []

    def full_and_could_not_checkpoint():
        calls.append(1)
        exc = StorageFull(POOL_FULL)
        exc.checkpointed = False
        raise exc

    with pytest.raises(StorageFull):
        store.once_more_when_full(full_and_could_not_checkpoint)
    assert calls == [1]


def test_a_pool_filling_with_changes_is_checkpointed_before_kuzu_runs_out(tmp_path):
    # A 32 MB pool whose log would not checkpoint on its own before 4 GB: the pages the
    # writes change pile up in the pool until a commit finds it three quarters full.
    s = GraphStore(tmp_path, buffer_pool_mb=32, checkpoint_wal_mb=4096)
    try:
        def used() -> int:
            return int(s.read("CALL bm_info() RETURN *")[0][1])

        written, peak = 0, 0
        for i in range(400):
            s.write_memories([
                rec(make_memory(f"batch {i} memory {j} " + "lorem ipsum " * 10),
                    customer_ids=tuple(f"c{k}-{i}-{j}" for k in range(4)))
                for j in range(20)
            ])
            written += 20
            peak = max(peak, used())
            if s.pool_checkpoints:
                break
        assert s.pool_checkpoints == 1 and s.full_checkpoints == 0
        assert used() < 0.75 * 32 * 1024 * 1024 < peak + 2 * 1024 * 1024
        assert count(s, "MATCH (m:Memory) RETURN count(*)") == written
    finally:
        s.close()


# -- what a write leaves in the graph ----------------------------------------------------------------------
@pytest.fixture
def linked(store):
    return write_linked_memory(store)


def test_meta_is_one_node_per_key(store):
    store.set_meta("k", "v1")
    store.set_meta("k", "v2")
    assert count(store, "MATCH (x:Meta {key: 'k'}) RETURN count(x)") == 1


def test_a_write_keys_its_nodes_by_agent(store, linked):
    assert store.read("MATCH (o:`Order`) RETURN o.uid, o.id, o.agent_id") == [[node_uid(A, "4521"), "4521", A]]
    assert store.read("MATCH (t:Ticket) RETURN t.uid, t.status") == [[node_uid(A, "T-77"), "open"]]
    assert store.read("MATCH (e:Entity) RETURN e.kind, e.key, e.value, e.agent_id") == [
        ["email", "jane@example.com", "jane@example.com", A]
    ]


def test_write_creates_the_edges(store, linked):
    m, session = linked
    p = {"id": m.id}
    assert store.read("MATCH (:Memory {id: $id})-[:ABOUT]->(c:Customer) RETURN c.id", p) == [["jane"]]
    assert store.read("MATCH (:Memory {id: $id})-[:MENTIONS]->(o:`Order`) RETURN o.id", p) == [["4521"]]
    assert store.read("MATCH (:Memory {id: $id})-[:MENTIONS]->(t:Ticket) RETURN t.id", p) == [["T-77"]]
    assert store.read("MATCH (:Memory {id: $id})-[:MENTIONS]->(e:Entity) RETURN e.key", p) == [["jane@example.com"]]
    assert store.read("MATCH (:Memory {id: $id})-[:IN_SESSION]->(s:Session) RETURN s.id", p) == [[session.id]]
    assert store.read("MATCH (c:Customer)-[:PLACED]->(o:`Order`) RETURN c.id, o.id") == [["jane", "4521"]]
    assert store.read("MATCH (c:Customer)-[:RAISED]->(t:Ticket) RETURN c.id, t.id") == [["jane", "T-77"]]
    assert store.read("MATCH (t:Ticket)-[:CONCERNS]->(o:`Order`) RETURN t.id, o.id") == [["T-77", "4521"]]
    assert store.read("MATCH (c:Customer)-[:HAD_SESSION]->(s:Session) RETURN c.id, s.id") == [["jane", session.id]]


def test_shared_nodes_are_merged_not_duplicated(store, linked):
    m2 = make_memory("Follow-up on order #4521 for jane.")
    store.write_memories([rec(m2, customer_ids=("jane",), orders=("4521",))])
    assert count(store, "MATCH (o:`Order`) RETURN count(o)") == 1
    assert count(store, "MATCH (c:Customer) RETURN count(c)") == 1
    assert count(store, "MATCH (:Customer)-[r:PLACED]->(:`Order`) RETURN count(r)") == 1
    assert count(store, "MATCH (:Memory)-[r:MENTIONS]->(:`Order`) RETURN count(r)") == 2


def test_two_agents_never_share_a_node(store, linked):
    other = make_memory("Agent b also has an order 4521 for jane.", agent=B)
    store.write_memories([rec(other, customer_ids=("jane",), orders=("4521",))])
    uids = sorted(r[0] for r in store.read("MATCH (o:`Order`) RETURN o.uid"))
    assert uids == sorted([node_uid(A, "4521"), node_uid(B, "4521")])
    assert store.customer_orders(B, "jane") == ["4521"]
    assert store.read(
        "MATCH (m:Memory)-[:ABOUT]->(c:Customer) WHERE m.agent_id <> c.agent_id RETURN count(*)"
    ) == [[0]]


def test_a_failing_batch_writes_nothing(store, linked):
    before = count(store, "MATCH (n) RETURN count(n)")
    rels_before = count(store, "MATCH ()-[r]->() RETURN count(r)")
    good = make_memory("a perfectly fine memory about bob and order 9001")
    dup = make_memory("this memory appears twice in the batch")
    batch = [
        rec(good, customer_ids=("bob",), orders=("9001",), tickets=("T-5",)),
        rec(dup, customer_ids=("carol",)),
        rec(dup),
    ]
    with pytest.raises(StorageError) as info:
        store.write_memories(batch)
    assert info.value.code == "STORAGE_ERROR"
    assert count(store, "MATCH (n) RETURN count(n)") == before
    assert count(store, "MATCH ()-[r]->() RETURN count(r)") == rels_before
    assert store.get_memories(A, [good.id, dup.id]) == {}
    assert store.get_customer(A, "bob") is None and store.get_customer(A, "carol") is None
    # The store is still usable afterwards.
    store.write_memories([rec(good, customer_ids=("bob",))])
    assert store.count_memories() == 2


# -- delete ------------------------------------------------------------------------------
def test_delete_removes_node_and_edges(store, linked):
    m, session = linked
    assert store.delete_memories(A, [m.id]) == [m.id]
    assert store.get_memories(A, [m.id]) == {}
    assert store.count_memories() == 0
    assert count(store, "MATCH (:Memory)-[r]->() RETURN count(r)") == 0
    assert linked_memories(store, A, NodeRefs(orders=("4521",), customers=("jane",))) == {}
    assert store.get_session(session.id).memory_count == 0
    # Nodes other memories may share stay.
    assert store.customer_orders(A, "jane") == ["4521"]


def test_session_without_customer_creates_no_customer(store):
    s = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(s)
    assert store.get_session(s.id).customer_id is None
    assert count(store, "MATCH (c:Customer) RETURN count(c)") == 0


# -- a customer filter answered from edge keys and the attribute cache (engine internals) --
@pytest.fixture(scope="module")
def filter_db(tmp_path_factory):
    store = GraphStore(tmp_path_factory.mktemp("filters"), buffer_pool_mb=64)
    yield store, filter_world(store)
    store.close()


def _names(ids, got):
    back = {v: k for k, v in ids.items()}
    return {back[i] for i in got}

def _key_map(ids, drop=()):
    """``VectorStore.ids_of`` for the filter store's memories (less ``drop``)."""
    known = {vector_key(i): i for name, i in ids.items() if name not in drop}
    return lambda agent_id, keys: {k: known[k] for k in keys if k in known}


def _keyed(store, ids_of, flt, now, limit):
    """``filtered_attrs`` with the key map ``open_embedded`` wires (the vector store's)."""
    store.key_ids = ids_of
    try:
        return store.filtered_attrs(A, flt, now, limit)
    finally:
        store.key_ids = None


def test_a_customer_filter_from_edge_keys_and_the_cache_equals_the_scan(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    ids_of = _key_map(ids)
    cases = (
        dict(customer_id="jane"), dict(customer_id="bob"), dict(customer_id="nobody"),
        dict(customer_id="jane", since=NOW - timedelta(days=2)), dict(customer_id="jane", until=NOW - timedelta(days=2)),
        dict(customer_id="jane", min_importance=0.6), dict(customer_id="jane", min_importance=0.2),
        dict(customer_id="jane", include_superseded=True),
    )
    for flt in cases:
        for now in (NOW, NOW - timedelta(hours=2)):  # before the expired note expired, too
            for limit in (100, 4, 3):
                answered, fast = store._customer_attrs(A, RecallFilter(**flt), now, limit, ids_of)
                assert answered, flt
                assert fast == store.filtered_attrs(A, RecallFilter(**flt), now, limit), (flt, now, limit)
                assert _keyed(store, ids_of, RecallFilter(**flt), now, limit) == fast
    # Agent b's memory is about its own jane; the expired note drops out with time.
    assert _names(ids, _keyed(store, ids_of, RecallFilter(customer_id="jane"), NOW, 100)) == {
        "sess_jane", "jane_old", "future_exp", "two"
    }
    assert "expired" in _names(ids, _keyed(store, ids_of, RecallFilter(customer_id="jane"), NOW - timedelta(hours=2),
                                           100))


def test_a_customer_filter_looks_up_what_the_cache_lacks(filter_db, monkeypatch):
    import casegraph.storage.embedded.memories

    store, filtered = filter_db
    ids, *_ = filtered
    jane = RecallFilter(customer_id="jane")
    scanned = store.filtered_attrs(A, jane, NOW, 100)
    store._attrs_cache.forget([ids["jane_old"], ids["two"]])
    assert store._customer_attrs(A, jane, NOW, 100, _key_map(ids)) == (True, scanned)
    # Past the allowance of misses, the scan answers.
    store._attrs_cache.forget([ids["jane_old"]])
    monkeypatch.setattr(casegraph.storage.embedded.memories, "_CACHE_MISSES_LOOKED_UP", 0)
    assert store._customer_attrs(A, jane, NOW, 100, _key_map(ids)) == (False, None)
    assert _keyed(store, _key_map(ids), jane, NOW, 100) == scanned


def test_a_customer_filter_scans_when_the_keys_cannot_answer_it(filter_db):
    store, filtered = filter_db
    ids, _, s_jane, _ = filtered
    jane = RecallFilter(customer_id="jane")
    # A memory the vector store does not know yet: the scan answers, with the same result.
    partial = _key_map(ids, drop=("jane_old",))
    assert store._customer_attrs(A, jane, NOW, 100, partial) == (False, None)
    assert _keyed(store, partial, jane, NOW, 100) == store.filtered_attrs(A, jane, NOW, 100)
    # Tags, memory types and sessions are not ranking attributes: those filters scan.
    for flt in (dict(tags=("vip",)), dict(memory_types=("semantic",)), dict(session_id=s_jane.id)):
        f = RecallFilter(customer_id="jane", **flt)
        assert _keyed(store, _key_map(ids), f, NOW, 100) == store.filtered_attrs(A, f, NOW, 100)


def test_opening_gives_the_graph_the_vector_stores_key_map(services):
    """Recall never passes a key map: ``open_embedded`` gives the graph the vector store's."""
    assert services.graph.key_ids == services.vectors.ids_of
