"""How many rows or keys reach Kùzu: as point statements, one UNWIND, or a staged join.

Owns the batching planner behind ``Transaction.rows`` and ``Transaction.edges`` and the
``by_keys`` reads. Kùzu 0.11 plans a key join, an ``IN`` list or an UNWIND that MATCHes by
key as a scan per row (docs/kuzu-quirks.md #17): cheap while the tables are small,
ruinous when they are large. So few rows run as prepared point statements, and many run
whichever way ``RowModes`` has measured cheaper. No statement text of a kind of record
lives here; callers pass theirs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

# Up to this many rows or ids, one primary-key statement each beats one scan of the table.
POINT_LOOKUP_LIMIT = 64
# Transaction.rows: rows run the other way to measure it, and how often (see RowModes).
PROBE_ROWS = 32
PROBE_EVERY = 16
# KeyModes: while joins win, every this-many-th call also runs its first keys as points. A
# probe costs a few point statements then (against a whole join while points win), and a
# point cost first measured on cold pages kept a batch's customers on a ~800 ms join for
# 8 of 30 calls at 100k, where points cost ~1.6 ms a customer.
JOIN_PROBE_EVERY = 4
# Lists of keys: up to this many, point statements with the key in the pattern; past it,
# one ``UNWIND $keys AS k MATCH (n {key: k})`` join. Never ``n.key IN $keys``: Kùzu 0.11
# tests an IN list against every row of the table (at 90k memories, 3,000 ids: 0.9 s as
# an IN list, 19 ms as an UNWIND join).
FEW_KEYS = 16
# A field of the row variable ``r`` in a statement run by ``Transaction.rows``.
ROW_FIELD = re.compile(r"\br\.(\w+)")
# The key parameter of a ``by_keys`` query.
_KEY_PARAM = re.compile(r"\$key\b")
# Past this many edges of one kind, Transaction.edges stages them and joins (006_edge_staging).
STAGE_MIN_EDGES = 64
_STAGE_FIELDS = ("f", "t", "k", "w", "reasons", "kinds", "parts")

Rows = Sequence[dict[str, Any]]


class Batch(Protocol):
    """The statements of a write transaction, as the planner runs them."""

    def __call__(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]: ...

    def unwind(self, body: str, rows: Rows, params: dict[str, Any]) -> None: ...

    def points(self, body: str, rows: Rows, params: dict[str, Any]) -> None: ...


class RowModes:
    """Per statement body, whether many rows run as one UNWIND or as point statements.

    Measured, not guessed: the first time, ``PROBE_ROWS`` rows run as one UNWIND and the
    rest as point statements; after that the cheaper way (seconds per row, a moving
    average) runs, and every ``PROBE_EVERY``-th time a sample is measured the other way
    again, since the balance moves as the tables grow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cost: dict[str, dict[str, float]] = {}
        self._calls: dict[str, int] = {}

    def plan(self, body: str) -> tuple[str, bool]:
        """(the way to run the rows, whether to measure a sample the other way first)."""
        with self._lock:
            cost = self._cost.get(body, {})
            calls = self._calls[body] = self._calls.get(body, 0) + 1
            if len(cost) < 2:
                return "point", True
            best = min(cost, key=lambda mode: cost[mode])
            return best, calls % PROBE_EVERY == 0

    def record(self, body: str, mode: str, rows: int, seconds: float) -> None:
        if rows <= 0:
            return
        with self._lock:
            cost = self._cost.setdefault(body, {})
            per_row = seconds / rows
            cost[mode] = per_row if mode not in cost else 0.7 * cost[mode] + 0.3 * per_row


def run_rows(batch: Batch, modes: RowModes, body: str, rows: Rows, params: dict[str, Any] | None = None) -> None:
    """Run ``body``, a statement over one row ``r``, for every row.

    A few rows run as prepared point statements (``r.x`` as ``$x``). Many rows of a body
    that only MERGEs nodes run as one UNWIND. Many rows of a body that MATCHes nodes by
    key run whichever way ``RowModes`` has measured cheaper for that body: Kùzu 0.11
    plans such an UNWIND as a scan per row, cheap while the tables are small and
    ruinous when they are large (500 order mentions at 90k memories: 4.4 s as one
    UNWIND, 0.11 s as point statements, whose cost does not grow with the table).
    """
    if not rows:
        return
    params = params or {}
    if len(rows) <= POINT_LOOKUP_LIMIT:
        batch.points(body, rows, params)
    elif not body.lstrip().upper().startswith("MATCH"):
        batch.unwind(body, rows, params)
    else:
        mode, probe = modes.plan(body)
        run = {"unwind": batch.unwind, "point": batch.points}
        if probe:  # a sample of the rows measures the other way
            other = "point" if mode == "unwind" else "unwind"
            t = time.perf_counter()
            run[other](body, rows[:PROBE_ROWS], params)
            modes.record(body, other, PROBE_ROWS, time.perf_counter() - t)
            rows = rows[PROBE_ROWS:]
        t = time.perf_counter()
        run[mode](body, rows, params)
        modes.record(body, mode, len(rows), time.perf_counter() - t)


def run_edges(
    batch: Batch,
    modes: RowModes,
    src: tuple[str, str],
    dst: tuple[str, str],
    action: str,
    rows: Rows,
    params: dict[str, Any] | None = None,
) -> None:
    """One edge per row, between the ``src`` (label, key property) node whose key is the
    row's ``f`` and the ``dst`` node whose key is its ``t``. ``action`` creates or
    merges ``(a)->(b)``; ``{r}`` in it names the row, whose other fields are the edge
    properties EdgeStage has (k, w, reasons, kinds, parts).

    Up to ``STAGE_MIN_EDGES`` rows run as ``run_rows`` runs them. More are staged in
    EdgeStage and joined with both node tables in one statement, which Kùzu hashes,
    then deleted (006_edge_staging): at 100k memories a point statement costs
    ~0.2-1 ms an edge, the join a few ms for them all.
    """
    if not rows:
        return
    (src_label, src_key), (dst_label, dst_key) = src, dst
    if len(rows) <= STAGE_MIN_EDGES:
        run_rows(
            batch,
            modes,
            f"MATCH (a:{src_label} {{{src_key}: r.f}}), (b:{dst_label} {{{dst_key}: r.t}}) "
            f"{action.format(r='r')}",
            rows,
            params,
        )
        return
    batch(
        "UNWIND $rows AS r CREATE (:EdgeStage {f: r.f, t: r.t, k: CAST(r.k AS INT64), w: CAST(r.w AS DOUBLE), "
        "reasons: CAST(r.reasons AS STRING[]), kinds: CAST(r.kinds AS STRING[]), parts: CAST(r.parts AS DOUBLE[])})",
        {"rows": [{field: row.get(field) for field in _STAGE_FIELDS} for row in rows]},
    )
    batch(
        f"MATCH (s:EdgeStage), (a:{src_label}), (b:{dst_label}) "
        f"WHERE a.{src_key} = s.f AND b.{dst_key} = s.t {action.format(r='s')}",
        params,
    )
    batch("MATCH (s:EdgeStage) DELETE s")


class KeyModes:
    """Per ``by_keys`` query, what a point statement costs a key and what one ``UNWIND``
    join costs a call (moving averages of seconds), so a long list runs whichever way is
    cheaper. A join's cost is mostly its scan, so it is counted per call, not per key: at
    100k memories a join cost 60-210 ms however short its list, and a point statement a
    fraction of a millisecond, so a few hundred keys still ran faster as points.

    Until both are known, a call with many keys runs its first ``FEW_KEYS`` keys as
    points and the rest as a join; so does every ``PROBE_EVERY``-th call after that
    (``JOIN_PROBE_EVERY``-th while joins win), since the balance moves as the tables grow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._point: dict[str, float] = {}  # seconds a key
        self._join: dict[str, float] = {}  # seconds a call
        self._calls: dict[str, int] = {}

    def plan(self, query: str, keys: int) -> tuple[str, bool]:
        """(the way to run the keys, whether to measure both ways on this call instead)."""
        with self._lock:
            point, join = self._point.get(query), self._join.get(query)
            calls = self._calls[query] = self._calls.get(query, 0) + 1
        if point is None:
            return "join", True
        if join is None:
            return "join", False
        best = "point" if point * keys <= join else "join"
        return best, calls % (PROBE_EVERY if best == "point" else JOIN_PROBE_EVERY) == 0

    def record(self, query: str, mode: str, keys: int, seconds: float) -> None:
        if keys <= 0:
            return
        with self._lock:
            costs, value = (self._point, seconds / keys) if mode == "point" else (self._join, seconds)
            costs[query] = value if query not in costs else 0.7 * costs[query] + 0.3 * value


def by_keys(
    run: Callable[[str, dict[str, Any]], list[list[Any]]],
    query: str,
    keys: Iterable[Any],
    params: dict[str, Any] | None,
    modes: KeyModes | None = None,
) -> list[list[Any]]:
    """Run ``query`` (with ``$key`` inside a node pattern, e.g. ``(t:Ticket {uid: $key})``)
    for each distinct key: up to ``FEW_KEYS`` as prepared point statements (an UNWIND join
    costs a table scan however short its list: 170 ms for one ticket's memories at 90k
    memories), past that as one ``UNWIND $keys AS key`` join, or, with ``modes``, as
    whichever of the two it has measured cheaper for this query and this many keys. Rows
    come key by key; an ORDER BY in ``query`` orders the rows of each key."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    params = params or {}

    def points(part: list[Any]) -> list[list[Any]]:
        t = time.perf_counter()
        rows = [row for key in part for row in run(query, {**params, "key": key})]
        if modes is not None:
            modes.record(query, "point", len(part), time.perf_counter() - t)
        return rows

    def join(part: list[Any]) -> list[list[Any]]:
        t = time.perf_counter()
        rows = run("UNWIND $keys AS key " + _KEY_PARAM.sub("key", query), {**params, "keys": part})
        if modes is not None:
            modes.record(query, "join", len(part), time.perf_counter() - t)
        return rows

    if len(keys) <= FEW_KEYS:
        return points(keys)
    if modes is None:
        return join(keys)
    mode, probe = modes.plan(query, len(keys))
    if not probe:
        return points(keys) if mode == "point" else join(keys)
    # Either way, a probe runs the first keys as points and the rest as one join: a join
    # of a few keys costs less than one of thousands (at 100k, 24 ms for 16 memory ids,
    # ~680 ms for ~5,000 under load), so it is measured on a list as long as the calls'.
    return points(keys[:FEW_KEYS]) + join(keys[FEW_KEYS:])
