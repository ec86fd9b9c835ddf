"""The perf benchmark's own helpers (its figures come from `python -m benchmarks.perf`, never
from a timed test)."""

from __future__ import annotations

import mmap
import os
import sys

import pytest

from benchmarks.perf import make_corpus, report, rss_parts

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/smaps")


def _rss_mb() -> float:
    # smaps_rollup walks the same page tables as smaps. VmRSS (/proc/PID/status) is a counter
    # each thread caches up to 64 pages of, so with the many threads a suite leaves running
    # (ONNX Runtime, tantivy, servers) it was 12.6 MB off in two CI-like runs.
    with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("Rss:"))


def test_rss_parts_add_up_to_the_resident_set_and_put_each_mapping_in_its_kind():
    # Both read the same pages, moments apart. Threads that earlier tests left in this process
    # (servers, index flushers) may allocate between the reads: read the resident set before
    # and after, and measure again while it moved.
    for _ in range(5):
        before = _rss_mb()
        parts = rss_parts(os.getpid())
        after = _rss_mb()
        if abs(after - before) < 2:
            break
    assert set(parts) == {"buffer pool", "heap", "other anonymous", "model file", "libraries"}
    assert parts["libraries"] > 1  # the interpreter and numpy at least
    assert min(before, after) - 8 < sum(parts.values()) < max(before, after) + 8

    # 64 MiB of anonymous memory, touched, shows up as "other anonymous"; a reservation of
    # over 1 GiB (Kùzu's buffer pool is one) as "buffer pool". One at a time: the kernel
    # merges neighbouring anonymous mappings into one.
    for size, touched, kind in ((64 << 20, 64, "other anonymous"), (2 << 30, 16, "buffer pool")):
        before = rss_parts(os.getpid())
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            region.write(b"x" * (touched << 20))
            grown = rss_parts(os.getpid())[kind] - before[kind]
        finally:
            region.close()
        assert grown == pytest.approx(touched, abs=4)


def test_report_prints_the_peak_and_the_rss_breakdown_when_the_load_measured_them():
    row = {
        "n": 1000, "floor_encode_per_s": 250.0, "batch_per_s": 100.0, "single8_per_s": 50.0,
        "floor_recall": (10.0, 11.0, 12.0), "floor_threads": 1,
        **{k: (18.0, 20.0, 22.0) for k in ("recall_1", "recall_1_filtered", "recall_8", "recall_8_filtered")},
        "rss_mb": 900.0, "disk_bytes_per_memory": 9000.0, "restart_to_first_recall_s": 5.0,
    }
    assert "by mapping" not in report([row]) and "peak RSS" not in report([row])
    text = report([{**row, "rss_peak_mb": 1234.4, "rss_parts": {"buffer pool": 300.0, "heap": 100.0, "other anonymous": 400.0,
                                          "model file": 70.0, "libraries": 30.0}}])
    line = next(x for x in text.splitlines() if "RSS after load by mapping" in x)
    assert "buffer pool 300; heap 100; other anonymous 400; model file 70; libraries 30" in line
    assert "| peak RSS during the load (MB) | 1234 |" in text
    assert "| 0.40× |" not in text and "100 (0.40×)" in text


def test_corpus_is_seeded():
    a, b = make_corpus(50, 3), make_corpus(50, 3)
    assert [it["content"] for it in a.items] == [it["content"] for it in b.items]
    assert a.queries == b.queries


def test_recall_profile_names_the_template_of_every_perf_query():
    from benchmarks.perf import QUERIES
    from benchmarks.recall_profile import template_of

    queries = [q for q, _ in make_corpus(3000, 7).queries]
    assert {template_of(q) for q in queries} == set(QUERIES)
    assert template_of("status of ticket T-1042 #5") == "status of ticket T-{ticket}"
    assert template_of("Jane Doe previous interactions and preferences #1") == "{name} previous interactions and preferences"
