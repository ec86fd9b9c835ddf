"""GroupCommitter: concurrent groups share rounds, commits keep arrival order, and one
group's failure (in either stage) never fails another's. Pure logic: plain functions stand
in for embedding and the graph transaction."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from casegraph.domain.writer import GroupCommitter


def test_groups_coalesce_and_each_caller_gets_its_own_results():
    committed: list[list[str]] = []
    gate = threading.Event()

    def prepare(items):
        gate.wait(5)  # hold the first round so the others queue up behind it
        return [x.upper() for x in items]

    def commit(items):
        committed.append(list(items))
        return [f"{x}!" for x in items]

    writer = GroupCommitter(commit, prepare=prepare)
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(writer.submit, [f"a{i}", f"b{i}"]) for i in range(8)]
            time.sleep(0.2)
            gate.set()
            results = [f.result(5) for f in futures]
    finally:
        writer.close()
    assert results == [[f"A{i}!", f"B{i}!"] for i in range(8)]
    assert sum(len(c) for c in committed) == 16
    assert writer.rounds < 8  # coalesced: fewer commits than callers


@pytest.mark.parametrize("stage", ["prepare", "commit"])
def test_a_failing_group_fails_alone(stage):
    gate = threading.Event()
    seen: list[str] = []

    def check(items):
        if any(x == "bad" for x in items):
            raise ValueError("bad item")

    def prepare(items):
        gate.wait(5)
        if stage == "prepare":
            check(items)
        return list(items)

    def commit(items):
        if stage == "commit":
            check(items)
        seen.extend(items)
        return list(items)

    writer = GroupCommitter(commit, prepare=prepare)
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(writer.submit, g) for g in (["x"], ["y", "bad"], ["z"])]
            time.sleep(0.2)
            gate.set()
            assert futures[0].result(5) == ["x"] and futures[2].result(5) == ["z"]
            with pytest.raises(ValueError, match="bad item"):
                futures[1].result(5)
    finally:
        writer.close()
    assert sorted(seen) == ["x", "z"]  # the failed group committed nothing


def test_close_finishes_queued_groups_and_commits_in_arrival_order():
    order: list[int] = []
    writer = GroupCommitter(lambda items: order.extend(items) or list(items), prepare=list)
    with ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(writer.submit, [i]) for i in range(20)]
        assert [f.result(5) for f in futures] == [[i] for i in range(20)]
    writer.close()
    assert order == list(range(20))
