"""VectorStore against real USearch indexes in tmp_path (small fake embeddings: the store
never interprets them)."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.search import ReconcileReport, vector_key

NDIM = 4
A = "agent-a"
B = "agent-b"
# The USearch engine itself; test_search_backends.py checks its behaviour on either engine.
pytestmark = pytest.mark.embedded_only


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


BASIS = np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1), unit(1, 1, 0, 0)])


@pytest.fixture
def store(tmp_path) -> VectorStore:
    return VectorStore(tmp_path / "vectors", NDIM)


class Loader:
    """A load_vectors callback that records what reconcile asked for."""

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, agent_id: str, memory_ids: list[str]) -> np.ndarray:
        self.calls.append((agent_id, list(memory_ids)))
        return np.stack([self.vectors[m] for m in memory_ids])


def hit_ids(hits) -> list[str]:
    return [h.memory_id for h in hits]


# -- add / search / remove ---------------------------------------------------------------
def test_search_returns_the_nearest_first(store):
    mids = ids(5)
    store.add(A, mids, BASIS)
    hits = store.search(A, unit(1, 0, 0, 0), 3)
    assert hits[0].memory_id == mids[0]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[1].memory_id == mids[4]
    assert hits[1].similarity == pytest.approx(np.sqrt(0.5), abs=1e-5)
    assert len(hits) == 3
    sims = [h.similarity for h in hits]
    assert sims == sorted(sims, reverse=True)


def test_search_asks_for_at_most_the_index_size(store):
    mids = ids(3)
    store.add(A, mids, BASIS[:3])
    assert sorted(hit_ids(store.search(A, unit(1, 1, 1, 1), 100))) == sorted(mids)


def test_searching_an_empty_or_unknown_agent_returns_nothing(store):
    assert store.search("nobody", unit(1, 0, 0, 0), 10) == []
    assert store.count("nobody") == 0
    assert store.keys("nobody") == set()


def test_add_of_nothing_is_a_no_op(store, tmp_path):
    store.add(A, [], np.zeros((0, NDIM), dtype=np.float32))
    assert store.count(A) == 0


def test_count_and_keys(store):
    mids = ids(5)
    store.add(A, mids, BASIS)
    assert store.count(A) == 5
    assert store.keys(A) == set(mids)


def test_remove(store):
    mids = ids(5)
    store.add(A, mids, BASIS)
    assert store.remove(A, [mids[0]]) == 1
    assert store.count(A) == 4
    assert mids[0] not in store.keys(A)
    hits = store.search(A, unit(1, 0, 0, 0), 10)
    assert mids[0] not in hit_ids(hits)
    assert hits[0].memory_id == mids[4]  # the next nearest now comes first
    assert store.remove(A, [mids[0], str(uuid.uuid4())]) == 0  # already gone / never there
    assert store.remove("nobody", mids) == 0
    assert store.count(A) == 4


def test_adding_an_existing_id_replaces_its_vector(store):
    mids = ids(5)
    store.add(A, mids, BASIS)
    store.add(A, [mids[3]], unit(1, 0, 0, 0)[None, :])  # mids[3] moves next to mids[0]
    assert store.count(A) == 5
    top2 = store.search(A, unit(1, 0, 0, 0), 2)
    assert set(hit_ids(top2)) == {mids[0], mids[3]}
    assert all(h.similarity == pytest.approx(1.0, abs=1e-5) for h in top2)
    assert mids[3] not in hit_ids(store.search(A, unit(0, 0, 0, 1), 1))


def test_vectors_of_returns_the_stored_vectors_of_present_ids(store):
    mids = ids(3)
    store.add(A, mids[:2], BASIS[:2])
    got = store.vectors_of(A, mids)
    assert set(got) == set(mids[:2])  # mids[2] was never added
    np.testing.assert_allclose(got[mids[0]], BASIS[0], atol=1e-6)
    np.testing.assert_allclose(got[mids[1]], BASIS[1], atol=1e-6)
    assert store.vectors_of(B, mids) == {}  # another agent's index holds none of them
    assert store.vectors_of(A, []) == {}
    store.remove(A, [mids[0]])
    assert set(store.vectors_of(A, mids)) == {mids[1]}


# -- per-agent isolation -----------------------------------------------------------------
def test_agents_never_see_each_others_vectors_even_when_identical(store):
    a_ids, b_ids = ids(5), ids(5)
    store.add(A, a_ids, BASIS)
    store.add(B, b_ids, BASIS)  # exactly the same vectors
    for q in BASIS:
        assert set(hit_ids(store.search(B, q, 10))) <= set(b_ids)
        assert set(hit_ids(store.search(A, q, 10))) <= set(a_ids)
    assert len(store.search(B, BASIS[0], 10)) == 5
    assert store.keys(A) == set(a_ids) and store.keys(B) == set(b_ids)


def test_removing_in_one_agent_leaves_the_other_alone(store):
    shared = ids(1)
    store.add(A, shared, BASIS[:1])
    store.add(B, shared, BASIS[:1])  # even the same memory id
    assert store.remove(A, shared) == 1
    assert store.count(A) == 0
    assert store.count(B) == 1
    assert hit_ids(store.search(B, BASIS[0], 1)) == shared


def test_each_agent_has_its_own_index_file(store, tmp_path):
    store.add(A, ids(1), BASIS[:1])
    store.add(B, ids(1), BASIS[:1])
    store.save()
    files = sorted((tmp_path / "vectors").glob("*.usearch"))
    assert len(files) == 2
    # File names do not leak agent ids.
    assert all(A not in f.name and B not in f.name for f in files)


# -- persistence -------------------------------------------------------------------------
def test_save_and_reload_from_disk(store, tmp_path):
    a_ids, b_ids = ids(5), ids(2)
    store.add(A, a_ids, BASIS)
    store.add(B, b_ids, BASIS[:2])
    store.save()
    assert not list((tmp_path / "vectors").glob("*.tmp"))  # atomic save leaves no temp files

    reloaded = VectorStore(tmp_path / "vectors", NDIM)
    assert reloaded.count(A) == 5 and reloaded.count(B) == 2
    loader = Loader({})
    report = reloaded.reconcile({A: set(a_ids), B: set(b_ids)}, loader)
    # Everything came from disk: nothing re-embedded, nothing dropped.
    assert report == ReconcileReport(agents=2, added=0, removed=0)
    assert loader.calls == []
    hits = reloaded.search(A, unit(1, 0, 0, 0), 2)
    assert hit_ids(hits) == [a_ids[0], a_ids[4]]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert set(hit_ids(reloaded.search(B, unit(0, 1, 0, 0), 5))) == set(b_ids)


def test_save_writes_only_after_changes(store, tmp_path):
    store.add(A, ids(2), BASIS[:2])
    store.save()
    path = next((tmp_path / "vectors").glob("*.usearch"))
    mtime = path.stat().st_mtime_ns
    store.save()  # nothing changed: nothing rewritten
    assert path.stat().st_mtime_ns == mtime
    mids = ids(1)
    store.add(A, mids, BASIS[2:3])
    store.save()
    assert VectorStore(tmp_path / "vectors", NDIM).count(A) == 3


def test_removals_are_persisted(store, tmp_path):
    mids = ids(5)
    store.add(A, mids, BASIS)
    store.save()
    store.remove(A, mids[:2])
    store.save()
    assert VectorStore(tmp_path / "vectors", NDIM).count(A) == 3


# -- reconcile ---------------------------------------------------------------------------
def test_reconcile_adds_missing_and_removes_orphans(store, tmp_path):
    mids = ids(5)
    vectors = dict(zip(mids, BASIS, strict=True))
    store.add(A, mids[:3], BASIS[:3])  # mids[3], mids[4] missing from the index
    orphan = ids(1)
    store.add(A, orphan, unit(0, 0, 0, 1)[None, :])  # in the index, not in the graph
    store.save()

    fresh = VectorStore(tmp_path / "vectors", NDIM)
    loader = Loader(vectors)
    report = fresh.reconcile({A: set(mids)}, loader)
    assert report == ReconcileReport(agents=1, added=2, removed=1)
    assert loader.calls and loader.calls[0][0] == A
    assert sorted(m for _, chunk in loader.calls for m in chunk) == sorted(mids[3:])
    assert fresh.count(A) == 5
    assert fresh.keys(A) == set(mids)
    assert orphan[0] not in hit_ids(fresh.search(A, unit(0, 0, 0, 1), 10))
    # The added vectors are the ones load_vectors gave.
    assert fresh.search(A, BASIS[3], 1)[0].memory_id == mids[3]
    # ...and reconcile saved the result.
    assert VectorStore(tmp_path / "vectors", NDIM).count(A) == 5


def test_reconcile_of_an_agent_without_index_builds_it(store, tmp_path):
    mids = ids(3)
    report = store.reconcile({A: set(mids)}, Loader(dict(zip(mids, BASIS[:3], strict=True))))
    assert report == ReconcileReport(agents=1, added=3, removed=0)
    assert store.count(A) == 3
    assert len(list((tmp_path / "vectors").glob("*.usearch"))) == 1


def test_reconcile_deletes_index_files_of_agents_without_memories(store, tmp_path):
    a_ids, b_ids = ids(2), ids(2)
    store.add(A, a_ids, BASIS[:2])
    store.add(B, b_ids, BASIS[:2])
    store.save()
    assert len(list((tmp_path / "vectors").glob("*.usearch"))) == 2

    fresh = VectorStore(tmp_path / "vectors", NDIM)
    report = fresh.reconcile({A: set(a_ids)}, Loader({}))  # B has no memories any more
    assert report.agents == 1
    files = list((tmp_path / "vectors").glob("*.usearch"))
    assert len(files) == 1
    assert VectorStore(tmp_path / "vectors", NDIM).count(B) == 0
    assert fresh.count(A) == 2


def test_reconcile_with_an_empty_graph_clears_the_directory(store, tmp_path):
    store.add(A, ids(2), BASIS[:2])
    store.save()
    report = VectorStore(tmp_path / "vectors", NDIM).reconcile({}, Loader({}))
    assert report == ReconcileReport(agents=0, added=0, removed=0)
    assert list((tmp_path / "vectors").glob("*.usearch")) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_index_file_is_rebuilt_by_reconcile(store, tmp_path, damage, caplog):
    mids = ids(5)
    store.add(A, mids, BASIS)
    store.save()
    path = next((tmp_path / "vectors").glob("*.usearch"))
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x13\x37" * 500, "truncated": data[: len(data) // 2], "empty": b""}[damage])

    fresh = VectorStore(tmp_path / "vectors", NDIM)
    loader = Loader(dict(zip(mids, BASIS, strict=True)))
    report = fresh.reconcile({A: set(mids)}, loader)
    assert report.added == 5 and report.removed == 0
    assert fresh.count(A) == 5
    assert hit_ids(fresh.search(A, unit(0, 0, 1, 0), 1)) == [mids[2]]
    if damage != "empty":
        assert "unreadable" in caplog.text
    # The rebuilt file is valid again.
    again = VectorStore(tmp_path / "vectors", NDIM)
    assert again.count(A) == 5
    assert again.reconcile({A: set(mids)}, Loader({})) == ReconcileReport(agents=1, added=0, removed=0)


def test_reconcile_loads_large_gaps_in_chunks(store):
    mids = ids(5_001)
    rng = np.random.default_rng(7)
    vectors = dict(zip(mids, rng.standard_normal((len(mids), NDIM)).astype(np.float32), strict=True))
    loader = Loader(vectors)
    report = store.reconcile({A: set(mids)}, loader)
    assert report.added == 5_001
    assert [len(chunk) for _, chunk in loader.calls] == [5_000, 1]
    assert store.count(A) == 5_001


# -- vector_key --------------------------------------------------------------------------
def test_vector_key_is_stable():
    # Index files on disk depend on these exact values: they must never change.
    assert vector_key("12345678-1234-5678-1234-567812345678") == 0x12345678_12345678_12345678_12345678 >> 65
    assert vector_key("12345678-1234-5678-1234-567812345678") == 655_884_232_586_570_556
    assert vector_key("not-a-uuid") == 626_072_423_769_637_204


def test_vector_key_is_deterministic_63_bit_and_distinct():
    mids = ids(2_000) + [f"custom-{i}" for i in range(200)]
    keys = [vector_key(m) for m in mids]
    assert keys == [vector_key(m) for m in mids]
    assert all(0 <= k < 2**63 for k in keys)
    assert len(set(keys)) == len(keys)


def test_vector_key_ignores_uuid_spelling():
    u = uuid.uuid4()
    assert vector_key(str(u)) == vector_key(str(u).upper()) == vector_key(u.hex)


def test_vectors_are_held_in_half_precision_and_read_back_as_float32(store):
    memory_ids = ids(2)
    store.add(A, memory_ids, BASIS[:2])
    got = store.vectors_of(A, memory_ids)
    assert all(v.dtype == np.float32 for v in got.values())
    np.testing.assert_allclose(got[memory_ids[1]], BASIS[1], atol=1e-3)
    # A component half precision cannot hold exactly comes back rounded to it.
    third = ids(1)
    store.add(A, third, unit(1, 1, 1, 0)[None, :])
    back = store.vectors_of(A, third)[third[0]]
    assert np.array_equal(back, back.astype(np.float16).astype(np.float32))
    assert not np.array_equal(back, unit(1, 1, 1, 0))


def test_an_index_saved_in_float32_by_an_earlier_version_still_loads(tmp_path):
    from usearch.index import Index

    memory_ids = ids(3)
    old = VectorStore(tmp_path / "vectors", NDIM)
    old.add(A, memory_ids, BASIS[:3])
    old.save()
    [path] = (tmp_path / "vectors").glob("*.usearch")  # where the store keeps agent A's index
    f32 = Index(ndim=NDIM, metric="cos", dtype="f32")
    f32.add(np.array([vector_key(m) for m in memory_ids], dtype=np.uint64), BASIS[:3])
    f32.save(str(path))
    store = VectorStore(tmp_path / "vectors", NDIM)
    report = store.reconcile({A: set(memory_ids)}, Loader({}))
    assert report == ReconcileReport(agents=1, added=0, removed=0)  # nothing rebuilt
    assert [h.memory_id for h in store.search(A, BASIS[2], 1)] == [memory_ids[2]]


def test_vector_key_matches_the_uuid_parse_for_every_spelling():
    u = uuid.uuid4()
    spellings = [str(u), str(u).upper(), u.hex, f"{{{u}}}", f"urn:uuid:{u}", f" {u.hex} ", str(u)[:-1] + "g",
                 "0x" + u.hex[2:], "+" + u.hex[1:], u.hex[:16] + "_" + u.hex[17:], "-" * 4 + u.hex]
    for s in spellings:
        try:
            want = uuid.UUID(s).int >> 65
        except ValueError:
            want = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest()) >> 1
        assert vector_key(s) == want, s
