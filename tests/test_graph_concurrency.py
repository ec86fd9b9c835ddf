"""Regression: keyword (full-text) queries running while writes commit must not crash.

Kùzu 0.11.3 corrupts its heap and aborts the process when a full-text query overlaps a
write transaction; GraphStore keeps them apart (app/rwlock.py). A crash would take the
test process with it, so the stress runs in a child process: 3 s of batches and deletes
against 4 threads of keyword searches."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import random, sys, threading, time, uuid
    from datetime import UTC, datetime
    from pathlib import Path
    import numpy as np
    from app.graph import GraphStore, MemoryRecord
    from app.models import Memory

    graph = GraphStore(Path(sys.argv[1]), buffer_pool_mb=128)
    words = "refund parcel router wifi invoice delivery password order late damaged".split()
    stop = time.monotonic() + 3
    stored, searches = [], [0]

    def memory():
        now = datetime.now(UTC)
        text = " ".join(random.choices(words, k=6))
        m = Memory(id=str(uuid.uuid4()), agent_id="bot", content=text, importance=0.5, tags=(),
                   memory_type="episodic", metadata={}, created_at=now, updated_at=now)
        return MemoryRecord(memory=m, embedding=np.zeros(4, dtype=np.float32))

    def writer():
        while time.monotonic() < stop:
            batch = [memory() for _ in range(random.randint(1, 5))]
            graph.write_memories(batch)
            stored.extend(r.memory.id for r in batch)
            if random.random() < 0.3:
                graph.delete_memories("bot", [stored.pop(random.randrange(len(stored)))])

    def reader():
        while time.monotonic() < stop:
            graph.keyword_search("bot", random.choice(words), 20)
            searches[0] += 1

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert graph.count_memories("bot") == len(stored)
    print(len(stored), searches[0])
""")


def test_keyword_search_during_writes_does_not_crash(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    stored, searches = map(int, done.stdout.split())
    assert stored > 10 and searches > 10
