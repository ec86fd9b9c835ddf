"""The hygiene store (HygieneStore, CustomerContextStore) through its interface, on both
engines (tests/storage/backends.py): the candidates a batch is compared with, and the
decisions written in the write's own transaction, for memories stored before it and in it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from casegraph.storage.hygiene import Reinforcement, Supersession

from tests.storage.backends import hygiene_of, open_store
from tests.storage.records import NOW, A, make_memory, rec


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "g")
    yield s
    s.close()


def test_dedup_candidates_are_the_customers_current_memories_and_all_the_near_ones(store):
    hygiene = hygiene_of(store)
    at = lambda days: NOW - timedelta(days=days)  # noqa: E731
    close = make_memory("close", customer_id="jane", created_at=at(3))
    far = make_memory("far", customer_id="jane", created_at=at(2))
    newest = make_memory("newest, close", customer_id="jane", created_at=at(1))
    oldest = make_memory("oldest, close", customer_id="jane", created_at=at(9))
    expiring = make_memory("expiring", customer_id="jane", created_at=at(1), expires_at=NOW + timedelta(days=1))
    bob = make_memory("bob's", customer_id="bob", created_at=at(1))
    vectors = {close.id: unit(1, 0.1, 0, 0), far.id: unit(0, 0, 1, 0), newest.id: unit(1, 0.05, 0.01, 0),
               oldest.id: unit(1, 0, 0, 0.01), expiring.id: unit(1, 0, 0, 0), bob.id: unit(1, 0, 0, 0)}
    store.write_memories([
        rec(m, vectors[m.id], customer_ids=(m.customer_id,)) for m in (close, far, newest, oldest, expiring, bob)
    ])

    everything = hygiene.dedup_neighbours(A, ["jane", "nobody"], NOW)
    assert [n.id for n in everything["jane"]] == [newest.id, far.id, close.id, oldest.id]  # newest first
    assert everything["nobody"] == []
    # Asked for what is near the batch: every near one, its vector exact, in the same order;
    # a far one may be left out (a server engine does not ship it).
    near = hygiene.dedup_neighbours(A, ["jane"], NOW, near={"jane": np.stack([unit(1, 0, 0, 0)])},
                                    min_similarity=0.98)
    assert [n.id for n in near["jane"] if n.id != far.id] == [newest.id, close.id, oldest.id]
    for n in near["jane"]:
        assert n.embedding.tobytes() == vectors[n.id].tobytes()
        assert (n.content, n.memory_type, n.importance) == ({m.id: m for m in (close, far, newest, oldest)}[n.id]
                                                            .content, "episodic", 0.5)
    # The most recent ``limit`` are the candidates, near or not.
    assert [n.id for n in hygiene.dedup_neighbours(A, ["jane"], NOW, limit=2)["jane"]] == [newest.id, far.id]
    limited = hygiene.dedup_neighbours(A, ["jane"], NOW, limit=3, near={"jane": np.stack([unit(1, 0, 0, 0)])},
                                       min_similarity=0.98)
    assert [n.id for n in limited["jane"] if n.id != far.id] == [newest.id, close.id]


def test_hygiene_decisions_commit_with_the_write_for_old_and_new_memories(store):
    hygiene = hygiene_of(store)
    old = make_memory("refund pending for order 4521", customer_id="jane", created_at=NOW - timedelta(days=2),
                      importance=0.4)
    store.write_memories([rec(old, unit(1, 0, 0, 0), customer_ids=("jane",), orders=("4521",))])
    assert [s.id for s in hygiene.stateful_neighbours(A, ["4521"], [], NOW)] == []  # no states yet

    new = make_memory("refund approved for order 4521", customer_id="jane", created_at=NOW)
    twin = make_memory("refund approved for order 4521!", customer_id="jane", created_at=NOW)
    later = NOW + timedelta(minutes=1)

    def decide(tx):
        hygiene.write_hygiene(
            tx,
            {old.id: ("refund:pending",), new.id: ("refund:approved",)},
            [Reinforcement(old.id, 0.6, later, 2), Reinforcement(new.id, 0.7, later, 1)],
            [Supersession(old.id, new.id, later)],
            later,
        )

    store.write_memories([rec(new, unit(0, 1, 0, 0), customer_ids=("jane",), orders=("4521",)),
                          rec(twin, unit(0, 1, 0, 0), customer_ids=("jane",))], after=decide)
    got = store.get_memories(A, [old.id, new.id])
    assert (got[old.id].states, got[old.id].superseded_by) == (("refund:pending",), new.id)
    assert (got[old.id].importance, got[old.id].reinforce_count, got[old.id].last_seen_at) == (0.6, 2, later)
    assert got[old.id].updated_at == later
    # A memory created in the same write: its count is the reinforcement's, not added twice.
    assert (got[new.id].states, got[new.id].importance, got[new.id].reinforce_count) == (("refund:approved",), 0.7, 1)
    stated = hygiene.stateful_neighbours(A, ["4521"], [], NOW)
    assert [(s.id, s.states, s.orders) for s in stated] == [(new.id, ("refund:approved",), frozenset({"4521"}))]
    assert hygiene.memory_session(A, new.id) is None and hygiene.memory_session(A, "no-such-id") is None
    # Superseded memories are no dedup candidates either.
    assert old.id not in {n.id for n in hygiene.dedup_neighbours(A, ["jane"], NOW)["jane"]}
