"""Keyword (BM25) indexes, one tantivy index per agent.

Per-agent statistics by construction: every agent has its own index directory, so an
agent's document frequencies and lengths are its own; one tenant's memories neither
come back for another's query nor move its scores.

The analyzer is the one both engines share (storage/terms.py, ``terms``), so
identifiers survive: ``firstname_lastname_6699``, ``jane.doe@x.com``, ``T-1042`` are
indexed whole, joined up and by their parts, ``#W1588712`` as ``w1588712``. Tantivy then
drops the shared stop words and stems (the field's tokenizer, ``_ANALYZER``).

Kùzu is the source of truth; an index is a cache of each memory's text, written after
the graph commits and reconciled against the graph at start-up (stray ids deleted,
missing ones re-added from stored content), so a crash loses nothing acknowledged.
A tantivy commit costs 8-400 ms (it syncs files), too much for every write or search:
writes are committed by a background flusher a moment later, and until then a search
scores them itself beside the committed index, so a memory stored is found by the next
recall. Deletions are committed at once (erasure). A deleted memory's terms stay in
tantivy's segment files (without the memory id or text) until a merge rewrites them.

Scores do not depend on when the flusher ran. Tantivy only finds the candidates; every
candidate, committed or not, is scored by one BM25 (tantivy's k1 and b, ``_bm25``) over
the statistics of the agent's live memories: the committed ones less those rewritten
since, plus the writes not yet committed. Tantivy's own scores would not do: they count
only committed documents (a memory stored a moment ago moved nothing yet), and deleted
ones until a merge. So a search gives the same scores before and after a commit, on a
live index and on one rebuilt from the graph (up to near-ties at the candidate cut, which
tantivy's statistics may order differently).

Only this module imports tantivy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import tantivy
from casegraph.storage.search import ReconcileReport
from casegraph.storage.terms import STOP_WORDS, terms

log = logging.getLogger("casegraph.keywords")

# The analyzer and schema of the files on disk; indexes written under another are rebuilt.
_VERSION = "3"
_VERSION_FILE = "VERSION"
_TOKENIZER = "casegraph"
# Tantivy wants at least this much indexing memory per writer thread.
_WRITER_HEAP = 15_000_000
_RELOAD_CHUNK = 5_000
# Past this many uncommitted documents (a bulk load) a search commits instead of scanning.
_PENDING_SCAN_LIMIT = 2_000
# Tantivy's BM25 parameters.
_BM25_K1 = 1.2
_BM25_B = 0.75
# Committed candidates scored beyond ``limit``: tantivy picks them by its own statistics,
# which can order near-ties at the cut differently from the live memories' (_bm25).
_MARGIN = 16
# Document counts of terms a view remembers (a count reads the term's whole postings list).
_DOC_COUNTS_KEPT = 10_000


def _idf(df: int, docs: int) -> float:
    return math.log(1.0 + (docs - df + 0.5) / (df + 0.5))


def _bm25(tokens: list[str], idf: dict[str, float], avg_len: float) -> float:
    """BM25 of one document (its analysed terms) for the query terms ``idf`` weighs, with
    ``avg_len`` the mean length: tantivy's formula, over statistics that do not depend on
    commits (the live memories')."""
    norm = _BM25_K1 * (1.0 - _BM25_B + _BM25_B * len(tokens) / avg_len)
    score = 0.0
    for term, weight in idf.items():
        tf = tokens.count(term)
        if tf:
            score += weight * tf * (_BM25_K1 + 1.0) / (tf + norm)
    return score


def _analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.custom_stopword(STOP_WORDS))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    # Frequencies without positions: BM25 needs no more, and the postings stay small.
    builder.add_text_field("terms", tokenizer_name=_TOKENIZER, index_option="freq")
    # What the analyzer made of "terms" (space-separated), kept so a search scores a
    # committed candidate from its terms as it scores an uncommitted one; and their
    # number, summed for the live memories' mean length.
    builder.add_bytes_field("tokens", stored=True)
    builder.add_integer_field("length", fast=True)
    return builder.build()


_ANALYZER = _analyzer()
_SCHEMA = _schema()


def _tokens(doc: tantivy.Document) -> list[str]:
    """A stored document's analysed terms."""
    text = bytes(doc["tokens"][0]).decode()
    return text.split(" ") if text else []


def _stored(searcher: tantivy.Searcher, ids: Sequence[str]) -> dict[str, list[str]]:
    """The committed live documents of these memory ids, by id, with their analysed terms."""
    if not ids:
        return {}
    query = tantivy.Query.term_set_query(_SCHEMA, "id", list(ids))
    hits = searcher.search(query, len(ids), count=False).hits
    docs = [searcher.doc(address) for _, address in hits]
    return {d["id"][0]: _tokens(d) for d in docs}


class _View:
    """What a search reads, swapped whole at each commit: the committed searcher, the
    documents written since (memory id, analysed terms; it only grows until the next commit)
    and the committed live documents' count and total length (read on first use)."""

    def __init__(self, searcher: tantivy.Searcher) -> None:
        self.searcher = searcher
        self.pending: list[tuple[str, list[str]]] = []
        self._totals: tuple[int, int] | None = None
        self._doc_counts: dict[str, int] = {}

    def totals(self) -> tuple[int, int]:
        """(documents, their total length) of the committed live documents."""
        if self._totals is None:  # two searches may both read it: the same numbers
            docs = self.searcher.num_docs
            tokens = 0
            if docs:
                agg = self.searcher.aggregate(tantivy.Query.all_query(), {"t": {"sum": {"field": "length"}}})
                tokens = int(agg["t"]["value"] or 0)
            self._totals = (docs, tokens)
        return self._totals

    def doc_count(self, term: str) -> int:
        """How many committed live documents hold ``term`` (tantivy's document frequency
        counts deleted ones until a merge), remembered until the next commit."""
        found = self._doc_counts.get(term)
        if found is None:
            if len(self._doc_counts) >= _DOC_COUNTS_KEPT:
                self._doc_counts.clear()
            query = tantivy.Query.term_query(_SCHEMA, "terms", term)
            found = self._doc_counts[term] = self.searcher.search(query, 1, count=True).count
        return found


class _AgentIndex:
    """One agent's index, its writer (opened when needed) and whether it has uncommitted changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.writer: tantivy.IndexWriter | None = None
        self.dirty = False
        self.view: _View
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.index = self._open()
        except Exception as exc:  # a torn or foreign directory is only a cache: rebuild it
            log.warning("keyword index %s unreadable (%s); rebuilding from the graph", path, exc)
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            self.index = self._open()
        self.view = _View(self.index.searcher())

    def _open(self) -> tantivy.Index:
        index = tantivy.Index(_SCHEMA, path=str(self.path), reuse=True)
        index.register_tokenizer(_TOKENIZER, _ANALYZER)
        index.config_reader(reload_policy="manual")
        index.reload()
        return index


class KeywordIndex:
    """Per-agent tantivy indexes under ``<data_dir>/keywords``, one directory each."""

    def __init__(self, directory: Path, *, flush_delay: float = 0.2, max_writers: int = 4) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.flush_delay = flush_delay
        # An open writer holds threads and up to 15 MB of indexing memory: only the
        # agents written to most recently keep one.
        self.max_writers = max_writers
        self._agents: dict[str, _AgentIndex] = {}
        self._writers: OrderedDict[str, _AgentIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._closed = False
        self._stop = threading.Event()
        self._check_version()
        self._flusher = threading.Thread(target=self._flush_loop, name="keywords-flush", daemon=True)
        self._flusher.start()

    @property
    def open_writers(self) -> int:
        """How many agents hold an open writer (at most ``max_writers``)."""
        with self._lock:
            return len(self._writers)

    def uncommitted(self, agent_id: str) -> bool:
        """True while the agent has writes no commit has made durable yet (a search scores
        them itself; the background flusher commits them a moment later)."""
        agent = self._agent(agent_id, create=False)
        return agent is not None and agent.dirty

    def _check_version(self) -> None:
        marker = self.directory / _VERSION_FILE
        found = marker.read_text().strip() if marker.exists() else None
        if found == _VERSION:
            return
        if found is not None or any(self.directory.iterdir()):
            log.warning("keyword indexes written by another analyzer (%s); rebuilding them", found)
            for path in self.directory.iterdir():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
        marker.write_text(_VERSION + "\n")

    def _dir_for(self, agent_id: str) -> Path:
        return self.directory / hashlib.sha256(agent_id.encode()).hexdigest()[:32]

    def _agent(self, agent_id: str, *, create: bool = True) -> _AgentIndex | None:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                path = self._dir_for(agent_id)
                if not create and not path.exists():
                    return None
                agent = _AgentIndex(path)
                self._agents[agent_id] = agent
            return agent

    def _writer(self, agent_id: str, agent: _AgentIndex) -> tantivy.IndexWriter:
        """The agent's writer (the caller holds ``agent.lock``), opening it if needed."""
        with self._lock:
            self._writers[agent_id] = agent
            self._writers.move_to_end(agent_id)
            evicted = []
            while len(self._writers) > self.max_writers:
                evicted.append(self._writers.popitem(last=False))
        for other_id, other in evicted:
            if other is not agent:
                self._close_writer(other_id, other)
        if agent.writer is None:
            agent.writer = agent.index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        return agent.writer

    def _close_writer(self, agent_id: str, agent: _AgentIndex) -> None:
        with agent.lock:
            try:
                self._commit(agent)
            finally:
                if agent.writer is not None and self._writers.get(agent_id) is not agent:
                    agent.writer.wait_merging_threads()
                    agent.writer = None

    def _commit(self, agent: _AgentIndex) -> None:
        """Commit and make visible the agent's pending changes (the caller holds its lock)."""
        if agent.dirty and agent.writer is not None:
            agent.writer.commit()
            agent.index.reload()
            agent.view = _View(agent.index.searcher())
        agent.dirty = False

    # -- writes -------------------------------------------------------------------
    def add(self, agent_id: str, docs: Sequence[tuple[str, str]], *, flush: bool = True) -> None:
        """Index ``(memory_id, text)`` pairs, replacing what a memory id had.

        ``flush=False`` (a bulk load that commits when done) leaves them to the caller's
        commit: a background commit between chunks costs a sync and makes small segments."""
        if not docs:
            return
        agent = self._agent(agent_id)
        analysed = []
        for memory_id, text in docs:
            joined = " ".join(terms(text))
            analysed.append((memory_id, joined, _ANALYZER.analyze(joined)))
        with agent.lock:
            writer = self._writer(agent_id, agent)
            pending = agent.view.pending
            for memory_id, text, tokens in analysed:
                writer.delete_documents_by_term("id", memory_id)
                stored = " ".join(tokens).encode()
                writer.add_document(tantivy.Document(id=memory_id, terms=text, tokens=stored, length=len(tokens)))
                if len(pending) < _PENDING_SCAN_LIMIT:
                    pending.append((memory_id, tokens))
            agent.dirty = True
        if flush:
            with self._wake:
                self._pending.add(agent_id)
                self._wake.notify()

    def delete(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        """Remove memories from the agent's index, committed before returning; returns
        how many it held."""
        ids = list(dict.fromkeys(memory_ids))
        agent = self._agent(agent_id, create=False)
        if agent is None or not ids:
            return 0
        with agent.lock:
            self._commit(agent)
            held = len(self._find_ids(agent, ids))
            writer = self._writer(agent_id, agent)
            for memory_id in ids:
                writer.delete_documents_by_term("id", memory_id)
            agent.dirty = True
            self._commit(agent)
        return held

    @staticmethod
    def _find_ids(agent: _AgentIndex, ids: Sequence[str]) -> set[str]:
        searcher = agent.index.searcher()
        query = tantivy.Query.term_set_query(_SCHEMA, "id", list(ids))
        hits = searcher.search(query, len(ids), count=False).hits
        return {searcher.doc(address)["id"][0] for _, address in hits}

    # -- reads --------------------------------------------------------------------
    def search(self, agent_id: str, text: str, limit: int) -> list[tuple[str, float]]:
        """The agent's memories matching ``text`` by BM25, best first: ``(memory_id, score)``."""
        wanted = list(dict.fromkeys(_ANALYZER.analyze(" ".join(terms(text)))))
        if not wanted or limit < 1:
            return []
        agent = self._agent(agent_id, create=False)
        if agent is None:
            return []
        view = agent.view
        pending = view.pending[: len(view.pending)]
        if len(pending) >= _PENDING_SCAN_LIMIT:
            with agent.lock:  # a bulk load not yet committed: commit it rather than scan it
                self._commit(agent)
            view, pending = agent.view, []
        searcher = view.searcher
        # A memory written again since the commit counts with its newest text only.
        recent = dict(pending)
        replaced = list(_stored(searcher, list(recent)).values()) if recent else []
        # The live memories' statistics: committed, less the rewritten, plus the recent.
        docs, length = view.totals()
        docs += len(recent) - len(replaced)
        length += sum(map(len, recent.values())) - sum(map(len, replaced))
        if docs <= 0:
            return []
        idf = {
            t: _idf(view.doc_count(t) - sum(t in r for r in replaced) + sum(t in r for r in recent.values()), docs)
            for t in wanted
        }
        avg_len = max(length / docs, 1.0)
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(_SCHEMA, "terms", t)) for t in wanted]
        )
        candidates = self._committed_hits(searcher, query, limit + _MARGIN, set(recent))
        candidates.extend(recent.items())
        scored = [(memory_id, _bm25(tokens, idf, avg_len)) for memory_id, tokens in candidates]
        # Ties by id: tantivy's order of equal scores follows its segments, i.e. commits.
        scored.sort(key=lambda hit: (-hit[1], hit[0]))
        return [hit for hit in scored[:limit] if hit[1] > 0]

    @staticmethod
    def _committed_hits(
        searcher: tantivy.Searcher, query: tantivy.Query, depth: int, shadowed: set[str]
    ) -> list[tuple[str, list[str]]]:
        """Tantivy's best ``depth`` committed hits not in ``shadowed``, with their analysed
        terms; a second, deeper search only when the first lost some to it (memories
        rewritten since the commit)."""
        wanted = depth
        while True:
            hits = searcher.search(query, depth, count=False).hits
            found = [searcher.doc(address) for _, address in hits]
            kept = [d for d in found if d["id"][0] not in shadowed]
            if len(kept) == len(found) or len(found) < depth or depth > wanted:
                return [(d["id"][0], _tokens(d)) for d in kept[:wanted]]
            depth = wanted + len(shadowed)

    def count(self, agent_id: str) -> int:
        """How many memories the agent's index holds (pending writes committed first)."""
        agent = self._agent(agent_id, create=False)
        if agent is None:
            return 0
        with agent.lock:
            self._commit(agent)
            return agent.index.searcher().num_docs

    def ids(self, agent_id: str) -> set[str]:
        """Every memory id in the agent's index (pending writes committed first)."""
        agent = self._agent(agent_id, create=False)
        if agent is None:
            return set()
        with agent.lock:
            self._commit(agent)
            return self._all_ids(agent)

    @staticmethod
    def _all_ids(agent: _AgentIndex) -> set[str]:
        searcher = agent.index.searcher()
        if searcher.num_docs == 0:
            return set()
        hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits
        return {searcher.doc(address)["id"][0] for _, address in hits}

    # -- start-up, flushing, shutdown --------------------------------------------
    def reconcile(
        self,
        graph_ids: dict[str, set[str]],
        load_texts: Callable[[str, list[str]], Iterable[tuple[str, str]]],
    ) -> ReconcileReport:
        """Make every agent's index hold exactly the memories the graph holds.

        ``load_texts(agent_id, ids)`` yields ``(memory_id, document_text)`` of those ids.
        """
        added = removed = 0
        known = {self._dir_for(a) for a in graph_ids}
        for path in self.directory.iterdir():
            if path.is_dir() and path not in known:
                shutil.rmtree(path, ignore_errors=True)
        for agent_id, wanted in graph_ids.items():
            agent = self._agent(agent_id)
            with agent.lock:
                self._commit(agent)
                present = self._all_ids(agent)
            stale = present - wanted
            if stale:
                removed += self.delete(agent_id, stale)
            missing = sorted(wanted - present)
            if missing:
                chunk: list[tuple[str, str]] = []
                for doc in load_texts(agent_id, missing):
                    chunk.append(doc)
                    if len(chunk) == _RELOAD_CHUNK:
                        self.add(agent_id, chunk, flush=False)
                        added += len(chunk)
                        chunk = []
                self.add(agent_id, chunk, flush=False)
                added += len(chunk)
            with agent.lock:
                self._commit(agent)
        return ReconcileReport(agents=len(graph_ids), added=added, removed=removed)

    def flush(self) -> None:
        """Commit every agent's pending writes."""
        with self._wake:
            pending, self._pending = self._pending, set()
        for agent_id in pending:
            agent = self._agent(agent_id, create=False)
            if agent is None:
                continue
            try:
                with agent.lock:
                    self._commit(agent)
            except Exception:  # the graph has them; reconcile re-adds them at start-up
                log.exception("committing the keyword index of agent %s failed", agent_id)

    def _flush_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
            # A burst of writes goes into one commit (close commits what is left).
            if self._stop.wait(self.flush_delay):
                return
            self.flush()

    def close(self) -> None:
        """Commit everything and release the writers; closing twice is harmless."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._wake.notify_all()
        self._flusher.join()
        self.flush()
        with self._lock:
            agents = list(self._agents.values())
            self._writers.clear()
        for agent in agents:
            with agent.lock, contextlib.suppress(Exception):
                self._commit(agent)
                if agent.writer is not None:
                    agent.writer.wait_merging_threads()
                    agent.writer = None
