"""The graph side of ``casegraph reembed`` (app/ops/reembed.py): progress rows and new embeddings.

A run records its target vector space under ``REEMBED_KEY``; each batch writes its
memories' embeddings and a progress row (``PROGRESS_PREFIX`` + the batch number, holding the
last memory id done) in one transaction; the end records the new space, drops the
progress rows and marks every ticket for a refresh. Meta rows are created and deleted,
never updated (docs/kuzu-quirks.md #1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.tickets import mark_tickets_stale
from casegraph.storage.space import EMBEDDING_KEY, REEMBED_KEY, VectorSpace

PROGRESS_PREFIX = "reembed_done:"


def last_progress(graph: GraphStore) -> tuple[str, int] | None:
    """(last memory id done, batches done) of the run recorded, or None before its first batch."""
    rows = graph.read(
        "MATCH (x:Meta) WHERE starts_with(x.key, $p) RETURN x.key, x.value ORDER BY x.key DESC LIMIT 1",
        {"p": PROGRESS_PREFIX},
    )
    if not rows:
        return None
    return json.loads(rows[0][1])["last"], int(rows[0][0][len(PROGRESS_PREFIX):])


def record_target(graph: GraphStore, target: VectorSpace) -> None:
    """Start a run towards ``target``: forget any earlier run's target and progress."""
    with graph.transaction(reports_attrs=True) as run:
        run("MATCH (x:Meta) WHERE x.key = $k OR starts_with(x.key, $p) DELETE x", {"k": REEMBED_KEY, "p": PROGRESS_PREFIX})
        run("CREATE (:Meta {key: $k, value: $v})", {"k": REEMBED_KEY, "v": target.to_json()})


def memory_ids(graph: GraphStore) -> list[str]:
    """Every memory id, in the order a run walks them (and resumes after the last done)."""
    return [r[0] for r in graph.read("MATCH (m:Memory) RETURN m.id ORDER BY m.id")]


def memory_contents(graph: GraphStore, ids: Sequence[str]) -> dict[str, str]:
    """The stored text of each existing memory among ``ids``."""
    return dict(graph.by_keys("MATCH (m:Memory {id: $key}) RETURN m.id, m.content", ids))


def write_batch(graph: GraphStore, ids: Sequence[str], vectors: np.ndarray, batch_no: int, last_id: str) -> None:
    """The batch's new embeddings and its progress row, in one transaction."""
    with graph.transaction(reports_attrs=True) as run:
        run.rows(
            "MATCH (m:Memory {id: r.id}) SET m.embedding = r.e",
            [{"id": i, "e": v.tolist()} for i, v in zip(ids, vectors, strict=True)],
        )
        run(
            "CREATE (:Meta {key: $k, value: $v})",
            {"k": f"{PROGRESS_PREFIX}{batch_no:09d}", "v": json.dumps({"last": last_id})},
        )


def finish(graph: GraphStore, target: VectorSpace) -> None:
    """Record ``target`` as the directory's vector space, drop the run's rows, and mark
    every ticket for a refresh (their mean embeddings and similar-wording relations)."""
    with graph.transaction(reports_attrs=True) as run:
        run(
            "MATCH (x:Meta) WHERE x.key IN [$k, $r] OR starts_with(x.key, $p) DELETE x",
            {"k": EMBEDDING_KEY, "r": REEMBED_KEY, "p": PROGRESS_PREFIX},
        )
        run("CREATE (:Meta {key: $k, value: $v})", {"k": EMBEDDING_KEY, "v": target.to_json()})
        mark_tickets_stale(run, "MATCH (t:Ticket)", {})
