"""The scaling benchmark's short profile, end to end (its figures come from
`python -m benchmarks.scaling`, never from a timed test): real `casegraph serve` processes
on the embedded store and two on one FalkorDB server with a replica, over HTTP."""

from __future__ import annotations

import sys

import pytest

from benchmarks.scaling import LABELS, arithmetic, measure, parse_args, report

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/stat")]


def test_the_short_profile_measures_both_backends_and_two_processes_share_one_store():
    # --wait: the FalkorDB server has a replica, and every write waits for it.
    args = parse_args(["--short", "--no-floor", "--configs", "embedded:1,falkordb:2", "--clients", "4", "--wait"])
    results = measure(args)

    assert [r["config"] for r in results] == ["embedded:1", "falkordb:2"]
    for r in results:
        # Every memory the clients were told about, through either process, is in the store
        # the last process counts.
        assert r["stored"] == r["acknowledged"] > 0
        assert (r["batch"].ops, r["single"].ops) == (args.memories, args.singles)
        assert len(r["recall_1"].latencies) == args.queries and len(r["recall_n"].latencies) == 2 * args.queries
        for phase in ("batch", "single", "recall_1", "recall_n"):
            assert r[phase].cpu_s["casegraph"] > 0
        # The FalkorDB servers' CPU is measured on their backend only.
        on_falkor = r["config"].startswith("falkordb")
        assert ("falkordb" in r["batch"].cpu_s) == ("replica" in r["batch"].cpu_s) == on_falkor
        if on_falkor:
            assert r["batch"].cpu_s["replica"] > 0

    text = report(results, None, args.clients)
    assert all(LABELS[r["config"]] in text for r in results)
    assert "| CPU ms per memory, storeBatch: CaseGraph / FalkorDB / clients |" in text
    assert "Floor" not in text
    # The N-machine rates come from the FalkorDB configuration's CPU per operation.
    table = arithmetic(results)
    assert "| 16 |" in table and "a FalkorDB core:" in table
