"""casegraph import / export: exact round trips, bad lines, and the domain paths they use.

The 10k-memory round trip with figures is ``python -m benchmarks.import_export``; here a
500-memory history of the same generator goes through the real CLI once
(``CASEGRAPH_ROUNDTRIP_MEMORIES=10000`` runs this test at the benchmark's size on demand).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from casegraph.domain.models import Session, StoreRequest
from casegraph.errors import MemoryExists, SessionEnded
from casegraph.ops.cli import main
from casegraph.ops.jsonl import stable_id
from casegraph.ops.transfer import export_jsonl, import_jsonl

from benchmarks.import_export import AGENT, generate_history, write_jsonl
from tests.conftest import test_store as store_address

ROOT = Path(__file__).resolve().parents[2]
ROUNDTRIP_MEMORIES = int(os.environ.get("CASEGRAPH_ROUNDTRIP_MEMORIES", "500"))


def export_text(services, agent_id: str = AGENT) -> str:
    from io import StringIO

    out = StringIO()
    export_jsonl(services.graph, agent_id, out, progress=False)
    return out.getvalue()


def test_history_round_trips_exactly_through_the_cli(open_services, tmp_path, capsys):
    n = ROUNDTRIP_MEMORIES
    source = tmp_path / "history.jsonl"
    history = generate_history(n, seed=11)
    write_jsonl(source, history)
    first_dir, first_export = tmp_path / "a", tmp_path / "export1.jsonl"
    first = ["--data-dir", str(first_dir), "--store", store_address(first_dir)]

    assert main(["import", str(source), *first, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "importing: 100%" in err and f"{n}/{n}" in err  # the progress bar
    assert f"imported {n} memories, 0 already present, 0 bad line(s) skipped" in err
    assert main(["export", "--agent", AGENT, *first, "-o", str(first_export)]) == 0
    exported = [json.loads(line) for line in first_export.read_text().splitlines()]
    assert len(exported) == n

    # Original ids, dates, customers, tickets and chats survive the first import.
    by_id = {e["id"]: e for e in exported}
    for line in history[:50]:
        e = by_id[stable_id("memory", AGENT, line["id"])]
        assert e["content"] == line["content"]
        assert datetime.fromisoformat(e["createdAt"]) == datetime.fromisoformat(line["createdAt"])
        assert set(line.get("tickets", ())) <= set(e["tickets"])
        expected_customer = line.get("customerId") or (line["session"]["customerId"] if isinstance(line.get("session"), dict) else None)
        if expected_customer:
            assert e["customerId"] == expected_customer
        if isinstance(line.get("session"), dict):
            assert e["session"]["id"] == stable_id("session", AGENT, line["session"]["id"])
            assert datetime.fromisoformat(e["session"]["endedAt"]) == datetime.fromisoformat(line["session"]["endedAt"])
    assert len({e["session"]["id"] for e in exported if e["session"]}) == len(
        {line["session"]["id"] if isinstance(line["session"], dict) else line["session"]
         for line in history if line.get("session")}
    )

    # export -> import into a fresh directory -> export: byte for byte the same.
    second = open_services(tmp_path / "b")
    report = import_jsonl(second, first_export, progress=False)
    assert (report.imported, report.already_present, report.bad) == (n, 0, [])
    assert export_text(second) == first_export.read_text()

    # Importing the same file again adds nothing: every id is already present.
    again = import_jsonl(second, first_export, on_error="skip", progress=False)
    assert (again.imported, again.already_present, again.bad) == (0, n, [])
    assert second.graph.count_memories(AGENT) == n


def bad_file(tmp_path: Path) -> Path:
    chat = {"id": "chat-9", "customerId": "jane-doe", "startedAt": "2024-03-01T10:00:00Z",
            "endedAt": "2024-03-01T10:20:00Z"}
    lines = [
        {"agentId": "bot", "content": "Order #4521 arrived damaged", "session": chat, "createdAt": "2024-03-01T10:01:00Z"},
        "{not json",
        {"agentId": "bot", "content": "   "},
        {"agentId": "bot", "content": "fine", "createdat": "2024-01-01"},
        {"agentId": "bot", "content": "Refund issued for order #4521", "session": "chat-9", "createdAt": "2024-03-01T10:05:00Z"},
        {"agentId": "bot", "content": "same chat, other end", "session": {**chat, "endedAt": "2024-03-01T11:00:00Z"}},
        {"content": "no agent here"},
        {"agentId": "bot", "content": "importance out of range", "importance": 3},
        {"agentId": "bot", "id": "hd-1", "content": "first with this id"},
        {"agentId": "bot", "id": "hd-1", "content": "second with this id"},
        {"agentId": "bot", "content": "ticket link", "tickets": ["T-1042"], "customerId": "jane-doe"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(ln if isinstance(ln, str) else json.dumps(ln) for ln in lines) + "\n\n")
    return path


EXPECTED_BAD = [
    (2, "INVALID_JSON"),
    (3, "CONTENT_EMPTY"),
    (4, "INVALID_LINE"),
    (6, "SESSION_MISMATCH"),
    (7, "MISSING_AGENT"),
    (10, "DUPLICATE_ID"),
    (8, "INVALID_IMPORTANCE"),  # refused by the domain when its chunk is checked
]


def test_bad_lines_abort_the_whole_import_or_are_skipped(services, tmp_path):
    path = bad_file(tmp_path)
    reported = []
    aborted = import_jsonl(services, path, batch_size=3, progress=False, on_bad_line=reported.append)
    assert aborted.aborted and aborted.imported == 0
    assert sorted((b.line, b.code) for b in aborted.bad) == sorted(EXPECTED_BAD)
    assert reported == aborted.bad
    assert services.graph.count_memories("bot") == 0  # nothing half-applied

    skipped = import_jsonl(services, path, on_error="skip", batch_size=3, progress=False)
    assert sorted((b.line, b.code) for b in skipped.bad) == sorted(EXPECTED_BAD)
    assert (skipped.imported, skipped.lines, skipped.aborted) == (4, 11, False)
    assert services.graph.count_memories("bot") == 4
    session = services.memories.session_get(stable_id("session", "bot", "chat-9"))
    assert session.memory_count == 2 and session.customer_id == "jane-doe"
    assert session.ended_at == datetime(2024, 3, 1, 10, 20, tzinfo=UTC)
    assert services.graph.customer_tickets("bot", "jane-doe") == ["T-1042"]
    assert services.graph.customer_orders("bot", "jane-doe") == ["4521"]


def test_cli_reports_bad_lines(tmp_path, capsys):
    path = bad_file(tmp_path)
    store = store_address(tmp_path / "d")
    assert main(["import", str(path), "--data-dir", str(tmp_path / "d"), "--store", store, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "line 2: INVALID_JSON: not valid JSON" in err
    assert "line 7: MISSING_AGENT: agentId is missing" in err
    assert "import aborted: 7 bad line(s) of 11; nothing was written" in err
    out = tmp_path / "bot.jsonl"
    assert main(["export", "--agent", "bot", "--data-dir", str(tmp_path / "d"), "--store", store, "-o", str(out)]) == 0
    assert out.read_text() == ""
    capsys.readouterr()
    assert main(["export", "--agent", "bad|agent", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "agentId 'bad|agent' is invalid" in err and err.rstrip().endswith("(INVALID_AGENT_ID)")  # message, code


@pytest.mark.embedded_only
def test_cli_refuses_a_data_dir_in_use(open_services, tmp_path):
    open_services(tmp_path / "d")  # the server, as it were, holds the directory
    busy = subprocess.run(
        [sys.executable, "-m", "casegraph.ops.cli", "export", "--agent", "bot", "--data-dir", str(tmp_path / "d")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert busy.returncode == 2 and "in use by another process" in busy.stderr


def test_store_batch_keeps_ids_and_joins_ended_sessions_only_when_importing(services):
    started = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    chat = Session(id="0b6f8f4e-0000-4000-8000-000000000001", agent_id="bot", started_at=started,
                   customer_id="jane-doe", ended_at=started + timedelta(minutes=20), summary="refund")
    request = StoreRequest(agent_id="bot", content="Order #4521 refunded", session_id=chat.id,
                           id="0b6f8f4e-0000-4000-8000-0000000000aa", created_at=started,
                           updated_at=started, tickets=("1042",))
    with pytest.raises(SessionEnded):
        services.memories.store_batch([request], sessions=[chat])
    assert services.graph.get_session(chat.id) is None  # the failed batch created nothing

    [memory] = services.memories.store_batch([request], sessions=[chat], allow_ended_sessions=True)
    assert (memory.id, memory.created_at, memory.updated_at) == (request.id, started, started)
    assert memory.orders == ("4521",) and memory.tickets == ("T-1042",)
    assert memory.customer_id == "jane-doe"  # from its session
    stored = services.memories.session_get(chat.id)
    assert (stored.ended_at, stored.summary, stored.memory_count) == (chat.ended_at, "refund", 1)

    errors = services.memories.check_batch([request, replace(request, id=None), replace(request, id=None, content="")],
                                           allow_ended_sessions=True)
    assert [(i, type(e), e.code) for i, e in errors] == [(0, MemoryExists, "MEMORY_EXISTS"), (2, type(errors[1][1]), "CONTENT_EMPTY")]
    twice = [replace(request, id="0b6f8f4e-0000-4000-8000-0000000000bb")] * 2
    assert [e.code for _, e in services.memories.check_batch(twice, allow_ended_sessions=True)] == ["DUPLICATE_ID"]
