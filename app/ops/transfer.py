"""Import history from JSONL and export an agent's memories to JSONL (see app/ops/jsonl.py).

Import goes through the domain's write path: lines are read in chunks, each chunk is
checked (``MemoryService.check_batch``) and then stored with ``store_batch`` (one
transaction per chunk, extraction and embedding included). Bad lines are reported with
their line number and either skipped (``on_error="skip"``) or refuse the whole import
(``on_error="abort"``, the default): then every line is checked before anything is
written, so an aborted import writes nothing. Memories whose id is already stored are
counted as already present and left alone, which makes an import safe to re-run.

Both work through the storage interfaces, on either store. The embedded store's data
directory is opened directly, with the server stopped: Kùzu allows one writer
(docs/kuzu-quirks.md #8). A FalkorDB store is shared: import and export run while servers
serve it (writes take the agent's lock like any other).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from casegraph.domain.clock import utcnow
from casegraph.domain.models import Session, StoreRequest
from casegraph.errors import CaseGraphError, MemoryExists
from casegraph.ops.jsonl import LineError, ParsedLine, memory_line, parse_line
from casegraph.ops.settings import Settings
from casegraph.services import Services
from casegraph.storage.backend import is_embedded
from tqdm import tqdm

OnError = Literal["abort", "skip"]


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}: {self.message}"


@dataclass
class ImportReport:
    lines: int = 0  # non-blank lines read
    imported: int = 0
    already_present: int = 0
    bad: list[BadLine] = field(default_factory=list)
    aborted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bad and not self.aborted


class ImportInterrupted(Exception):
    """The store failed part-way (e.g. disk full); committed chunks stay, ids let a re-run resume."""

    def __init__(self, report: ImportReport, cause: BaseException) -> None:
        super().__init__(
            f"import stopped after {report.imported} memories were committed: {cause}; "
            "re-run the same import to resume (stored ids are skipped)"
        )
        self.report = report


# -- import ------------------------------------------------------------------------
def import_jsonl(
    services: Services,
    path: Path,
    *,
    on_error: OnError = "abort",
    batch_size: int = 500,
    default_agent: str | None = None,
    progress: bool | None = None,
    on_bad_line: Callable[[BadLine], None] | None = None,
) -> ImportReport:
    """Import ``path`` into ``services``; return what happened (see the module docstring)."""
    if on_error not in ("abort", "skip"):
        raise ValueError(f"on_error must be 'abort' or 'skip', got {on_error!r}")
    batch_size = max(1, min(batch_size, services.settings.max_batch_size))
    started = time.perf_counter()
    report = ImportReport()
    total = _count_lines(path)

    def bad(line: BadLine) -> None:
        report.bad.append(line)
        if on_bad_line is not None:
            on_bad_line(line)

    if on_error == "abort":
        # Check every line before writing any, so that an aborted import writes nothing.
        checked = ImportReport()
        reader = _Reader(path, default_agent, batch_size, bad)
        with _bar(total, "checking", progress) as bar:
            for chunk in reader.chunks(bar):
                _run_chunk(services, chunk, checked, bad, write=False)
        if report.bad:
            report.lines = reader.lines
            report.aborted = True
            report.seconds = time.perf_counter() - started
            return report

    reader = _Reader(path, default_agent, batch_size, bad)
    with _bar(total, "importing", progress) as bar:
        for chunk in reader.chunks(bar):
            try:
                _run_chunk(services, chunk, report, bad, write=True)
            except CaseGraphError as exc:
                report.lines, report.seconds = reader.lines, time.perf_counter() - started
                raise ImportInterrupted(report, exc) from exc
    report.lines = reader.lines
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Chunk:
    lines: list[tuple[int, ParsedLine]]
    sessions: dict[str, Session]  # the sessions these lines join, as the file describes them


def _run_chunk(
    services: Services, chunk: _Chunk, report: ImportReport, bad: Callable[[BadLine], None], *, write: bool
) -> None:
    if not chunk.lines:
        return
    requests = [p.request for _, p in chunk.lines]
    sessions = list(chunk.sessions.values())
    refused: dict[int, CaseGraphError] = dict(
        services.memories.check_batch(requests, sessions=sessions, allow_ended_sessions=True)
    )
    good: list[StoreRequest] = []
    for i, (line_no, _) in enumerate(chunk.lines):
        error = refused.get(i)
        if error is None:
            good.append(requests[i])
        elif isinstance(error, MemoryExists):
            report.already_present += 1
        else:
            bad(BadLine(line_no, error.code, error.message))
    if write and good:
        joined = {r.session_id for r in good}
        services.memories.store_batch(
            good, sessions=[s for s in sessions if s.id in joined], allow_ended_sessions=True, hygiene=False
        )
        report.imported += len(good)


class _Reader:
    """Reads a JSONL file in chunks; tracks ids and sessions across the whole file."""

    def __init__(
        self, path: Path, default_agent: str | None, batch_size: int, bad: Callable[[BadLine], None]
    ) -> None:
        self.path = path
        self.default_agent = default_agent
        self.batch_size = batch_size
        self.bad = bad
        self.now = utcnow()
        self.lines = 0  # non-blank lines read
        self.seen: dict[str, int] = {}  # memory id -> first line
        self.sessions: dict[str, tuple[Session, dict[str, Any], int]] = {}

    def chunks(self, bar: tqdm) -> Iterator[_Chunk]:
        chunk = _Chunk([], {})
        with self.path.open("rb") as f:
            for line_no, raw in enumerate(f, start=1):
                bar.update(1)
                if not raw.strip():
                    continue
                self.lines += 1
                try:
                    parsed = self._parse(raw, line_no)
                except LineError as exc:
                    self.bad(BadLine(line_no, exc.code, exc.message))
                    continue
                chunk.lines.append((line_no, parsed))
                if parsed.session is not None:
                    chunk.sessions[parsed.session.id] = self.sessions[parsed.session.id][0]
                if len(chunk.lines) >= self.batch_size:
                    yield chunk
                    chunk = _Chunk([], {})
        if chunk.lines:
            yield chunk

    def _parse(self, raw: bytes, line_no: int) -> ParsedLine:
        parsed = parse_line(raw, default_agent=self.default_agent)
        memory_id = parsed.request.id or ""
        if memory_id in self.seen:
            raise LineError(f"id {memory_id!r} repeats line {self.seen[memory_id]}", "DUPLICATE_ID")
        if parsed.session is not None:
            self._session(parsed, line_no)
        self.seen[memory_id] = line_no
        return parsed

    def _session(self, parsed: ParsedLine, line_no: int) -> None:
        """The first line naming a session describes it; later lines must agree with it
        (it may be stored by then, in an earlier chunk)."""
        spec, req = parsed.session, parsed.request
        assert spec is not None
        known = self.sessions.get(spec.id)
        if known is None:
            g = spec.given
            session = Session(
                id=spec.id,
                agent_id=req.agent_id,
                started_at=g.get("started_at") or req.created_at or self.now,
                customer_id=g.get("customer_id"),
                ended_at=g.get("ended_at"),
                summary=g.get("summary"),
                metadata=g.get("metadata") or {},
            )
            self.sessions[spec.id] = (session, dict(g), line_no)
            return
        session, first_given, first_line = known
        if session.agent_id != req.agent_id:
            raise LineError(
                f"session {spec.id!r} belongs to agent {session.agent_id!r} (line {first_line})",
                "SESSION_MISMATCH",
            )
        for key, value in spec.given.items():
            current = first_given.get(key, getattr(session, key))
            if value != current:
                raise LineError(
                    f"session {spec.id!r}: {key} differs from line {first_line}", "SESSION_MISMATCH"
                )


# -- export ------------------------------------------------------------------------
def open_for_export(settings: Settings) -> Any | None:
    """The graph store ``settings`` names, for reading (None: an embedded data directory
    with no data). Export reads memories and sessions only, so no model is loaded."""
    if is_embedded(settings.store):
        from casegraph.storage.embedded.graph import GraphStore

        if not (settings.data_dir / "graph").exists():
            return None
        return GraphStore(
            settings.data_dir, buffer_pool_mb=settings.buffer_pool_mb, checkpoint_wal_mb=settings.checkpoint_wal_mb
        )
    from casegraph.storage.falkor.store import FalkorStore

    return FalkorStore(settings.store)


def export_jsonl(
    graph: Any,
    agent_id: str,
    out: TextIO,
    *,
    now: datetime | None = None,
    progress: bool | None = None,
    page_size: int = 500,
) -> int:
    """Write the agent's unexpired memories, oldest first, one per line; return how many.

    ``graph``: a MemoryStore and SessionStore (either engine's graph store)."""
    now = now or utcnow()
    written = 0
    after = None
    with _bar(graph.count_memories(agent_id), "exporting", progress) as bar:
        while True:
            page = graph.agent_memories(agent_id, now, after=after, limit=page_size)
            if not page:
                break
            sessions = graph.get_sessions(sorted({m.session_id for m in page if m.session_id}))
            for m in page:
                out.write(memory_line(m, sessions.get(m.session_id or "")) + "\n")
            written += len(page)
            bar.update(len(page))
            after = (page[-1].created_at, page[-1].id)
    return written


# -- helpers -----------------------------------------------------------------------
def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def _bar(total: int, what: str, progress: bool | None) -> tqdm:
    # progress=None: a bar only when stderr is a terminal (tqdm's own rule).
    return tqdm(total=total, desc=what, unit=" lines" if what != "exporting" else " memories",
                disable=None if progress is None else not progress, dynamic_ncols=True)
