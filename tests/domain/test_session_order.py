"""The order of a session's memories (009_session_order), on the real stack: singles,
batches and concurrent stores get positions 1, 2, 3... in the order they committed;
the order survives a restart, an update and the migration of an older directory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.models import StoreRequest

from tests.storage.backends import graph_rows

A = "support-bot"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def positions(services, session_id: str) -> list[tuple[str, int | None]]:
    """(content, position) of the session's memories, by position."""
    rows = graph_rows(
        services.graph, A,
        "MATCH (m:Memory)-[e:IN_SESSION]->(:Session {id: $s}) RETURN m.content, e.seq ORDER BY e.seq",
        {"s": session_id},
    )
    return [(r[0], r[1]) for r in rows]


def contents(services, session_id: str) -> list[str]:
    return [m.content for m in services.memories.session_memories(session_id, agent_id=A)]


CHAT = [
    "user: hi, my parcel for order 4521 never arrived",
    "assistant: I am sorry to hear that, let me look order 4521 up",
    "user: the tracking page has said in transit for two weeks",
    "assistant: the courier confirms the parcel was lost in their depot",
    "user: can I get my money back please",
    "assistant: I have refunded order 4521 in full, expect it within five days",
]


def test_single_stores_with_equal_times_keep_the_order_they_were_stored_in(services):
    session = services.memories.session_start(A)
    for text in CHAT:  # one createdAt for all: the time alone cannot order them
        services.memories.store(StoreRequest(agent_id=A, content=text, session_id=session.id, created_at=T0))
    assert positions(services, session.id) == [(text, n) for n, text in enumerate(CHAT, start=1)]
    assert contents(services, session.id) == CHAT


def test_a_batch_is_numbered_in_its_own_order_after_what_the_session_holds(services):
    session = services.memories.session_start(A)
    services.memories.store(StoreRequest(agent_id=A, content="user: hello, I need help with a return", session_id=session.id))
    services.memories.store_batch([StoreRequest(agent_id=A, content=t, session_id=session.id) for t in CHAT])
    got = positions(services, session.id)
    assert [seq for _, seq in got] == list(range(1, 8))
    assert [text for text, _ in got] == ["user: hello, I need help with a return", *CHAT]
    assert contents(services, session.id) == ["user: hello, I need help with a return", *CHAT]


def test_a_batch_over_two_sessions_numbers_each_on_its_own(services):
    one, two = services.memories.session_start(A), services.memories.session_start(A)
    # 80 memories: over the staging threshold of the edge writer (app/storage/embedded/graph.py, STAGE_MIN_EDGES).
    texts = [f"user: message number {n} about ticket T-{1000 + n}" for n in range(80)]
    services.memories.store_batch(
        [StoreRequest(agent_id=A, content=t, session_id=(one if n % 2 else two).id) for n, t in enumerate(texts)]
    )
    for session, parity in ((one, 1), (two, 0)):
        want = [t for n, t in enumerate(texts) if n % 2 == parity]
        assert positions(services, session.id) == [(t, n) for n, t in enumerate(want, start=1)]


def test_stores_of_a_batch_with_their_own_times_are_numbered_by_time(services):
    session = services.memories.session_start(A)
    times = [T0 + timedelta(minutes=m) for m in (3, 1, 2)]
    services.memories.store_batch(
        [StoreRequest(agent_id=A, content=CHAT[i], session_id=session.id, created_at=t) for i, t in enumerate(times)]
    )
    assert [text for text, _ in positions(services, session.id)] == [CHAT[1], CHAT[2], CHAT[0]]


def test_concurrent_stores_into_one_session_get_distinct_positions_in_commit_order(services):
    session = services.memories.session_start(A)
    done: list[tuple[int, int]] = []  # (writer, n) in the order the stores returned
    lock = threading.Lock()

    def writer(w: int) -> None:
        for n in range(6):
            services.memories.store(StoreRequest(
                agent_id=A, content=f"writer {w} says message {n} about order {7000 + 10 * w + n}",
                session_id=session.id,
            ))
            with lock:
                done.append((w, n))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = positions(services, session.id)
    assert [seq for _, seq in got] == list(range(1, 25))
    order = [text for text, _ in got]
    for w in range(4):  # each writer's own stores, one after another, keep their order
        mine = [text for text in order if text.startswith(f"writer {w} ")]
        assert mine == [f"writer {w} says message {n} about order {7000 + 10 * w + n}" for n in range(6)]


def test_the_order_survives_a_restart_and_continues_after_it(open_services, tmp_path):
    s = open_services(tmp_path / "d")
    session = s.memories.session_start(A)
    s.memories.store_batch([StoreRequest(agent_id=A, content=t, session_id=session.id, created_at=T0) for t in CHAT[:4]])
    s.close()
    s = open_services(tmp_path / "d")
    s.memories.store_batch([StoreRequest(agent_id=A, content=t, session_id=session.id, created_at=T0) for t in CHAT[4:]])
    assert positions(s, session.id) == [(text, n) for n, text in enumerate(CHAT, start=1)]
    assert contents(s, session.id) == CHAT


def test_an_updated_memory_keeps_its_position(services):
    session = services.memories.session_start(A)
    stored = services.memories.store_batch([StoreRequest(agent_id=A, content=t, session_id=session.id) for t in CHAT])
    services.memories.update(A, stored[1].id, content="assistant: let me look up order 4521 for you")
    got = positions(services, session.id)
    assert [seq for _, seq in got] == list(range(1, 7))
    assert got[1][0] == "assistant: let me look up order 4521 for you"


@pytest.mark.embedded_only  # a Kùzu migration
def test_migration_009_numbers_existing_sessions_by_time(open_services, tmp_path):
    s = open_services(tmp_path / "d")
    session = s.memories.session_start(A)
    other = s.memories.session_start(A)
    for i, text in enumerate(CHAT):  # stored out of time order
        when = T0 + timedelta(minutes=len(CHAT) - i)
        s.memories.store(StoreRequest(agent_id=A, content=text, session_id=session.id, created_at=when))
    s.memories.store(StoreRequest(agent_id=A, content="user: a question on its own", session_id=other.id))
    # As a directory written before 009: no positions on the edges, 009 not recorded.
    with s.graph.transaction() as run:
        run("MATCH ()-[e:IN_SESSION]->() SET e.seq = NULL")
        run("MATCH (x:Migration {name: '009_session_order'}) DELETE x")
    s.close()
    s = open_services(tmp_path / "d")
    assert "009_session_order" in s.graph.applied_migrations
    assert positions(s, session.id) == [(text, n) for n, text in enumerate(reversed(CHAT), start=1)]
    assert positions(s, other.id) == [("user: a question on its own", 1)]
    assert "SeqBackfill" not in {r[0] for r in s.graph.read("CALL show_tables() RETURN name")}
    # New stores follow the numbered ones.
    s.memories.store(StoreRequest(agent_id=A, content="user: one more thing about order 4521", session_id=session.id))
    assert positions(s, session.id)[-1] == ("user: one more thing about order 4521", 7)
