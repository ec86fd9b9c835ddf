"""Sessions a bot never ends are ended after CASEGRAPH_SESSION_IDLE_MINUTES, consolidated
as sessionEnd would be; on the real stack with a clock the test moves, and once through
the server's background sweep."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.errors import ConfigurationError, SessionEnded
from casegraph.ops.settings import Settings
from casegraph.services import Services

from tests.clock import FakeClock
from tests.conftest import make_settings

A = "support-bot"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clocked(embedder, extractor, tmp_path):
    opened: list[Services] = []

    def _open(**overrides) -> tuple[Services, FakeClock]:
        clock = FakeClock(T0)
        s = Services.open(
            make_settings(tmp_path / f"d{len(opened)}", **overrides), embedder=embedder, extractor=extractor, clock=clock
        )
        opened.append(s)
        return s, clock

    yield _open
    for s in opened:
        with contextlib.suppress(Exception):
            s.close()


def chat(s, lines, customer=None):
    session = s.memories.session_start(A, customer_id=customer)
    stored = [s.memories.store(StoreRequest(agent_id=A, content=line, session_id=session.id)) for line in lines]
    return session, stored


CHAT = [
    "user: my order 4521 arrived with a cracked screen",
    "assistant: sorry about that, I can see order 4521 here",
    "assistant: I have issued a full refund for order 4521; it lands within five days",
]


def test_an_idle_session_is_ended_and_consolidated_an_active_one_is_not(clocked):
    s, clock = clocked(session_idle_minutes=120)
    idle, stored = chat(s, CHAT, customer="jane-doe")
    clock.advance(minutes=100)
    active, _ = chat(s, ["user: is the shop open on Sunday?", "assistant: yes, from 10 to 4"])
    clock.advance(minutes=21)  # idle 121 minutes, active 21
    assert s.memories.end_idle_sessions() == [idle.id]
    ended = s.memories.session_get(idle.id)
    assert ended.ended_at == clock.now
    assert s.memories.session_get(active.id).ended_at is None
    summary = s.memories.get(A, s.graph.session_summary_memory(idle.id))
    assert summary.kind == "summary" and summary.metadata["endedBy"] == "idle"
    assert summary.metadata["sources"] == [m.id for m in stored]
    assert "order #4521" in summary.content
    # Nothing idle is left; the active one ends in its turn.
    assert s.memories.end_idle_sessions() == []
    clock.advance(minutes=100)
    assert s.memories.end_idle_sessions() == [active.id]


def test_a_late_store_keeps_a_session_open(clocked):
    s, clock = clocked(session_idle_minutes=30)
    session, _ = chat(s, CHAT[:2])
    clock.advance(minutes=25)
    s.memories.store(StoreRequest(agent_id=A, content=CHAT[2], session_id=session.id))
    clock.advance(minutes=25)  # 50 since it started, 25 since the last store
    assert s.memories.end_idle_sessions() == []
    clock.advance(minutes=6)
    assert s.memories.end_idle_sessions() == [session.id]


def test_empty_and_single_memory_sessions_end_without_a_summary(clocked):
    s, clock = clocked(session_idle_minutes=10)
    empty = s.memories.session_start(A)
    single, _ = chat(s, CHAT[:1])
    clock.advance(minutes=11)
    assert set(s.memories.end_idle_sessions()) == {empty.id, single.id}
    for session in (empty, single):
        assert s.memories.session_get(session.id).ended_at is not None
        assert s.graph.session_summary_memory(session.id) is None


def test_zero_leaves_sessions_open(clocked):
    s, clock = clocked(session_idle_minutes=0)
    session, _ = chat(s, CHAT)
    clock.advance(days=30)
    assert s.memories.end_idle_sessions() == []
    assert s.memories.session_get(session.id).ended_at is None


def test_a_session_ended_by_the_idle_sweep_answers_what_happened_with_its_summary(clocked):
    s, clock = clocked(session_idle_minutes=60)
    session, stored = chat(s, CHAT)
    chat(s, ["user: do you ship to Norway?", "assistant: yes, within a week"])
    clock.advance(minutes=61)
    s.memories.end_idle_sessions()
    summary = s.graph.session_summary_memory(session.id)
    hits = s.recall.recall(A, "what happened with order 4521?", 5)
    why = {h.memory.id: h.why for h in hits}
    assert "summary of the conversation that mentions order #4521" in why[summary]
    # Storing into it afterwards is refused like any ended session.
    with pytest.raises(SessionEnded):
        s.memories.store(StoreRequest(agent_id=A, content="user: one more thing", session_id=session.id))


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({}).session_idle_minutes == 120
    assert Settings.from_env({"CASEGRAPH_SESSION_IDLE_MINUTES": "15"}).session_idle_minutes == 15
    assert Settings.from_env({"CASEGRAPH_SESSION_IDLE_MINUTES": "0"}).session_idle_minutes == 0
    with pytest.raises(ConfigurationError):
        Settings.from_env({"CASEGRAPH_SESSION_IDLE_MINUTES": "-1"})
    with pytest.raises(ConfigurationError):
        Settings.from_env({"CASEGRAPH_SESSION_IDLE_MINUTES": "soon"})


def test_the_servers_background_sweep_ends_idle_sessions(live_server_factory):
    # 0.3 s idle, swept every 0.2 s: the server's own housekeeping ends the session. The chat
    # is one batch, so a slow machine cannot leave 0.3 s between two of its messages.
    server = live_server_factory(session_idle_minutes=0.005, vector_save_interval_s=0.2)
    s = server.services
    session = s.memories.session_start(A)
    s.memories.store_batch([StoreRequest(agent_id=A, content=line, session_id=session.id) for line in CHAT])
    deadline = time.monotonic() + 30
    while s.memories.session_get(session.id).ended_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s.memories.session_get(session.id).ended_at is not None
    assert s.graph.session_summary_memory(session.id) is not None
