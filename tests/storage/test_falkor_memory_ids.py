"""Memory ids stay global on FalkorDB (app/storage/falkor/memory_ids.py), where each agent
is its own graph: a write claims its ids in the directory (NS:memories) atomically, so
two processes storing one id for two agents at the same instant cannot both land, and a
write that fails reserves nothing.

Two ``FalkorStore`` objects on one namespace are two processes; a write is paused at a
chosen point (a patched method waits on an event), so every race here runs one way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from casegraph.errors import MemoryExists, StorageError

from tests.storage.backends import falkor, open_store
from tests.storage.records import A, B, make_memory, new_id, rec

pytestmark = pytest.mark.skipif(not falkor(), reason="the FalkorDB engine (CASEGRAPH_TEST_STORE=falkordb)")

WAIT_S = 60  # a guard against a hang, never a timing


@pytest.fixture
def stores(tmp_path):
    first = open_store(tmp_path)
    second = type(first)(str(first.address), dimension=4)  # another process on the namespace
    yield first, second
    second.close()
    first.close()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def waits_for_lock(monkeypatch, store, agent_id: str) -> threading.Event:
    """An event set when ``store`` starts waiting for ``agent_id``'s write lock."""
    waiting = threading.Event()
    lock = store.lock

    def watched(agent, **kwargs):
        if agent == agent_id:
            waiting.set()
        return lock(agent, **kwargs)

    monkeypatch.setattr(store, "lock", watched)
    return waiting


def pause_after(monkeypatch, store, method: str) -> tuple[threading.Event, threading.Event]:
    """Make ``store.method`` (its first call) signal ``reached`` once done, then wait for ``go``."""
    reached, go = threading.Event(), threading.Event()
    original = getattr(store, method)

    def paused(*args, **kwargs):
        result = original(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            assert go.wait(WAIT_S)
        return result

    monkeypatch.setattr(store, method, paused)
    return reached, go


def memory_ids(store, agent_id: str) -> set[str]:
    return {r[0] for r in store.read(agent_id, "MATCH (m:Memory) RETURN m.id")}


def test_a_writer_that_claimed_but_has_not_locked_loses_to_a_take_over(stores, monkeypatch):
    """The first process claimed the id for A and stopped before it took A's lock (as one
    killed there would): B's write finds A's graph without the id, takes it over and lands;
    when the first goes on, its confirm under A's lock refuses its whole write."""
    first, second = stores
    shared, also = new_id(), new_id()
    reached, go = pause_after(monkeypatch, first, "claim_memories")
    thread, out = in_thread(lambda: first.write_memories([
        rec(make_memory("A's", id=shared)), rec(make_memory("A's other", id=also))]))
    assert reached.wait(WAIT_S)
    assert first.memory_agents([shared, also]) == {shared: A, also: A}  # claimed, not written

    theirs = make_memory("B's", agent=B, id=shared)
    second.write_memories([rec(theirs)])
    go.set()
    thread.join(WAIT_S)
    assert isinstance(out.get("error"), MemoryExists) and out["error"].code == "MEMORY_EXISTS"
    assert memory_ids(second, B) == {shared}
    assert memory_ids(second, A) == set()  # the refused write changed nothing
    assert second.memory_agents([shared, also]) == {shared: B}  # and reserved nothing
    assert second.existing_memory_ids([shared, also]) == {shared}


def test_a_writer_holding_its_lock_wins_and_the_other_changes_nothing(stores, monkeypatch):
    """The first process holds A's lock with its claim confirmed: B's write waits for that
    lock to judge the claim, finds the id in A's graph once A committed, and is refused
    before it wrote anything (its other id is not reserved either)."""
    first, second = stores
    shared, theirs_too = new_id(), new_id()
    reached, go = pause_after(monkeypatch, first, "_write_agent")
    thread, out = in_thread(lambda: first.write_memories([rec(make_memory("A's", id=shared))]))
    assert reached.wait(WAIT_S)

    waiting = waits_for_lock(monkeypatch, second, A)
    late, refused = in_thread(lambda: second.write_memories([
        rec(make_memory("B's other", agent=B, id=theirs_too)), rec(make_memory("B's", agent=B, id=shared))]))
    assert waiting.wait(WAIT_S)  # B's write is at A's lock
    go.set()
    thread.join(WAIT_S)
    late.join(WAIT_S)
    assert "error" not in out
    assert isinstance(refused.get("error"), MemoryExists)
    assert memory_ids(first, A) == {shared}
    assert memory_ids(first, B) == set()
    assert first.memory_agents([shared, theirs_too]) == {shared: A}


def test_the_same_agent_twice_keeps_the_id_when_one_of_the_writes_fails(stores, monkeypatch):
    """Two writes of agent A claim one id: the first claims it anew, the second finds it
    A's already. The first fails and releases it while the second waits between its claim
    and A's lock; the second confirms the claim again under the lock, so the id it commits
    is in the directory."""
    first, second = stores
    shared = new_id()

    def fail(tx):
        tx.write("UNWIND [0] AS z CREATE (:Broken {v: 1 / z})")  # fails when the query runs

    first_claimed, first_go = pause_after(monkeypatch, first, "claim_memories")
    failing, failed = in_thread(lambda: first.write_memories([rec(make_memory("fails", id=shared))], after=fail))
    assert first_claimed.wait(WAIT_S)
    second_claimed, second_go = pause_after(monkeypatch, second, "claim_memories")
    landing, landed = in_thread(lambda: second.write_memories([rec(make_memory("lands", id=shared))]))
    assert second_claimed.wait(WAIT_S)
    first_go.set()
    failing.join(WAIT_S)
    assert isinstance(failed.get("error"), StorageError)
    assert first.memory_agents([shared]) == {}  # released: its graph does not have it
    second_go.set()
    landing.join(WAIT_S)
    assert "error" not in landed
    assert first.memory_agents([shared]) == {shared: A}
    assert first.existing_memory_ids([shared]) == {shared}


def test_a_failed_write_releases_its_claims(stores):
    first, second = stores
    mine = new_id()

    def fail(tx):
        tx.write("UNWIND [0] AS z CREATE (:Broken {v: 1 / z})")

    with pytest.raises(StorageError):
        first.write_memories([rec(make_memory("fails", id=mine))], after=fail)
    assert first.memory_agents([mine]) == {}
    second.write_memories([rec(make_memory("B may have it", agent=B, id=mine))])
    assert first.memory_agents([mine]) == {mine: B}

    # A write for two agents commits agent by agent: the part that failed gives its ids
    # back, the part that landed keeps them.
    a_id, b_id = new_id(), new_id()

    def fail_for_b(tx):
        if tx.agent_id == B:
            fail(tx)

    with pytest.raises(StorageError):
        first.write_memories([rec(make_memory("a", id=a_id)), rec(make_memory("b", agent=B, id=b_id))],
                             after=fail_for_b)
    assert first.memory_agents([a_id, b_id]) == {a_id: A}
    assert first.existing_memory_ids([a_id, b_id]) == {a_id}


def test_a_stored_id_is_refused_to_another_agent_and_a_stale_claim_is_not(stores):
    first, second = stores
    held = make_memory("A's")
    first.write_memories([rec(held)])
    extra = new_id()
    with pytest.raises(MemoryExists):
        second.write_memories([rec(make_memory("B's", agent=B, id=extra)), rec(make_memory("B's", agent=B, id=held.id))])
    assert second.memory_agents([held.id, extra]) == {held.id: A}
    assert memory_ids(second, B) == set()

    # A claim whose write never committed (its process killed in between) is taken over.
    stale = new_id()
    first.claim_memories([(stale, A)])
    second.write_memories([rec(make_memory("B's now", agent=B, id=stale))])
    assert second.memory_agents([stale]) == {stale: B}
    # Replacing keeps the id its agent's.
    first.write_memories([rec(make_memory("A's, replaced", id=held.id))], replace=True)
    assert first.memory_agents([held.id]) == {held.id: A}


def test_an_erased_customers_ids_are_free_again(stores):
    from casegraph.storage.falkor.erasure import FalkorErasure

    first, second = stores
    m = make_memory("Jane's order is late", customer_id="jane")
    first.write_memories([rec(m, customer_ids=("jane",))])
    assert FalkorErasure(first).erase_customer(A, "jane").memories == 1
    assert first.memory_agents([m.id]) == {}
    second.write_memories([rec(make_memory("the id again", agent=B, id=m.id))])
    assert first.existing_memory_ids([m.id]) == {m.id}


def test_deleting_frees_an_id_and_a_restore_rebuilds_the_directory(stores):
    from casegraph.storage.falkor import snapshots

    first, _ = stores
    kept, gone = make_memory("kept"), make_memory("gone")
    first.write_memories([rec(kept), rec(gone)])
    assert first.delete_memories(A, [gone.id]) == [gone.id]
    assert first.memory_agents([kept.id, gone.id]) == {kept.id: A}

    graphs = {agent_id: payload for agent_id, payload, _ in snapshots.dump_graphs(first)}
    hashes = snapshots.namespace_hashes(first)
    later = make_memory("written after the snapshot")
    first.write_memories([rec(later)])
    first.claim_memories([(new_id(), B)])  # a claim in flight: not in the graphs restored
    snapshots.restore(first, first.address.namespace, graphs, hashes, force=True)
    assert first.redis.hgetall(first.key("memories")) == {kept.id: A}


def test_inside_writing_a_claim_uses_the_locks_the_thread_holds(stores):
    """The domain's stores hold their agents' locks (``writing``) around the write: the
    take-over of a stale claim of an agent this thread holds, and the release of a failed
    write's claims, use those locks instead of waiting for them (they would wait for
    themselves until STORE_BUSY)."""
    first, _ = stores
    stale, mine = new_id(), new_id()
    first.claim_memories([(stale, A)])  # a write of A's that never committed
    with first.writing([A, B]):
        first.write_memories([rec(make_memory("A's", id=mine)), rec(make_memory("B's", agent=B, id=stale))])
    assert first.memory_agents([stale, mine]) == {stale: B, mine: A}

    def fail(tx):
        tx.write("UNWIND [0] AS z CREATE (:Broken {v: 1 / z})")

    lost = new_id()
    with first.writing([A]), pytest.raises(StorageError):
        first.write_memories([rec(make_memory("fails", id=lost))], after=fail)
    assert first.memory_agents([lost]) == {}


def test_a_writer_holding_its_own_lock_waits_for_the_holders_write(stores, monkeypatch):
    """Both processes inside ``writing`` (each holds its own agent): B's claim of an id A
    claimed waits for A's lock, finds the id in A's graph once A committed, and is
    refused with nothing written."""
    first, second = stores
    shared = new_id()
    reached, go = pause_after(monkeypatch, first, "_write_agent")

    def write_a():
        with first.writing([A]):
            first.write_memories([rec(make_memory("A's", id=shared))])

    thread, out = in_thread(write_a)
    assert reached.wait(WAIT_S)
    waiting = waits_for_lock(monkeypatch, second, A)

    def write_b():
        with second.writing([B]):
            second.write_memories([rec(make_memory("B's", agent=B, id=shared))])

    late, refused = in_thread(write_b)
    assert waiting.wait(WAIT_S)
    go.set()
    thread.join(WAIT_S)
    late.join(WAIT_S)
    assert "error" not in out
    assert isinstance(refused.get("error"), MemoryExists)
    assert memory_ids(first, A) == {shared} and memory_ids(first, B) == set()
    assert first.memory_agents([shared]) == {shared: A}
