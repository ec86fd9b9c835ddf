"""Threads: the conversation around a memory that names something, and how it ended.

A bot stores each message of a chat as a memory of one session ("user: my order #4521
never came", "assistant: I have refunded it"). A query about an order, a ticket or an
identifier ("what happened with order 4521?") is answered by the messages that name it
*and* by the outcome of each conversation that discussed it, which rarely names it
again. ``outcomes`` walks those sessions (their memories are numbered in order,
009_session_order) from the first message that names the node to:

- the session's summary memory, when the session was ended with one;
- otherwise the agent's last message after it: the last one whose speaker prefix is an
  agent's (``assistant:``, ``agent:``, ``bot:``, ``support:`` ..., or a ``role``/``speaker``
  in its metadata); when the session marks only the customer's lines, the last unmarked
  one; when it marks none, its last message. (Of an ended session, that message is
  labelled and scored as an outcome too, but not placed.)

``place`` then puts each thread's outcome right below the best-ranked message of its
thread, so it lands in the top results without pushing that message out. Customers are
not walked: a customer's history is every session of theirs, which the graph signal
already brings, and an outcome under each would crowd out their other sessions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from casegraph.domain.ranking import Ranked
from casegraph.storage.search import GraphLink, NodeRefs
from casegraph.storage.sessions import SessionStore

# Sessions walked per query (the newest first), and messages read from the end of each.
MAX_THREADS = 5
TAIL_MESSAGES = 12
# Memories naming one node that are looked at to find its sessions.
MAX_MENTIONS = 200
# The graph signal of an outcome: below a memory that names the node (1.0), above one a
# hop away (0.75). ``place`` decides where it shows; this only scores it.
OUTCOME_STRENGTH = 0.9
# Two memories match a query equally when their graph signals are equal and their
# semantic and keyword signals differ by at most this (fused ranks of two equal texts
# still differ by a rank, so scores cannot tell).
EQUAL_MATCH = 0.02
# Entity kinds that name a person or a kind of thing rather than one case: a customer's
# e-mail or name leads to all their sessions (customer history), not to one thread.
_NOT_THREADS = frozenset(
    {"email", "phone", "person", "org", "product", "account", "handle", "name", "money", "date", "place"}
)

AGENT = "agent"
USER = "user"
_AGENT_WORDS = frozenset({
    "assistant", "agent", "bot", "support", "rep", "representative", "advisor", "adviser", "operator",
    "staff", "system", "ai", "csr", "helpdesk", "service", "chatbot", "support agent", "customer service",
    "customer support", "live agent",
})
_USER_WORDS = frozenset({"user", "customer", "client", "human", "caller", "guest", "visitor", "me", "buyer", "member"})
# A speaker prefix: up to three words before a colon, optionally in ** or [] ("**Agent:**").
_PREFIX = re.compile(r"^\s*[\[*_(]{0,3}\s*([A-Za-z][A-Za-z .'-]{0,30}?)\s*[\]*_)]{0,3}\s*[:：>]")
_ROLE_KEYS = ("role", "speaker", "author", "from", "sender")


def speaker(content: str, metadata: dict[str, Any] | None = None) -> str | None:
    """AGENT, USER, or None when neither the text's prefix nor the metadata says."""
    for key in _ROLE_KEYS:
        value = (metadata or {}).get(key)
        if isinstance(value, str):
            who = _classify(value)
            if who is not None:
                return who
    m = _PREFIX.match(content)
    return _classify(m.group(1)) if m else None


def _classify(word: str) -> str | None:
    w = " ".join(word.lower().replace("_", " ").split())
    if w in _AGENT_WORDS or w.endswith((" agent", " bot", " support", " assistant")):
        return AGENT
    if w in _USER_WORDS:
        return USER
    return None


@dataclass(frozen=True, slots=True)
class Message:
    """One memory of a session, at its position."""

    id: str
    seq: int
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)


def last_agent_message(messages: Sequence[Message]) -> Message | None:
    """The outcome among ``messages`` (the end of a session, in order): see the module doc."""
    if not messages:
        return None
    said = [(m, speaker(m.content, m.metadata)) for m in messages]
    if any(who == AGENT for _, who in said):
        return next(m for m, who in reversed(said) if who == AGENT)
    if any(who == USER for _, who in said):
        return next((m for m, who in reversed(said) if who is None), None)
    return messages[-1]


@dataclass(slots=True)
class Thread:
    """One session that names a node of the query, and what it came to."""

    session_id: str
    label: str  # what it names, e.g. "order #4521"
    anchors: set[str] = field(default_factory=set)  # its memories that name it
    first_seq: int = 0
    started_at: datetime | None = None
    ended: bool = False
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (memory id, why), placed
    also: list[tuple[str, str]] = field(default_factory=list)  # labelled and scored, not placed


def names_a_case(entities: Sequence[Any]) -> bool:
    """Whether entities (with a ``kind``) name an order, a ticket or an identifier: what a
    conversation is walked from."""
    return any(e.kind in ("order", "ticket") or e.kind not in _NOT_THREADS for e in entities)


def node_labels(refs: NodeRefs) -> list[tuple[str, str, str]]:
    """(kind, key, label) of the nodes of ``refs`` whose conversations are walked."""
    out = [("order", k, f"order #{k}") for k in refs.orders]
    out += [("ticket", k, f"ticket {k}") for k in refs.tickets]
    out += [
        ("entity", f"{kind}:{key}", key if kind == "identifier" else f"{kind} {key}")
        for kind, key in refs.entities
        if kind not in _NOT_THREADS
    ]
    return out


def find_threads(graph: SessionStore, agent_id: str, refs: NodeRefs, now: datetime) -> list[Thread]:
    """The newest ``MAX_THREADS`` sessions that name a node of ``refs``, with their outcomes."""
    threads: dict[str, Thread] = {}
    for kind, key, label in node_labels(refs):
        for memory_id, session_id, seq, started_at, ended in graph.session_mentions(agent_id, kind, key, MAX_MENTIONS):
            t = threads.get(session_id)
            if t is None:
                t = threads[session_id] = Thread(session_id, label, first_seq=seq, started_at=started_at, ended=ended)
            t.anchors.add(memory_id)
            t.first_seq = min(t.first_seq, seq)
    newest = sorted(threads.values(), key=lambda t: (t.started_at is not None, t.started_at), reverse=True)
    chosen = newest[:MAX_THREADS]
    for t in chosen:
        summary = graph.session_summary_memory(t.session_id) if t.ended else None
        if summary is not None:
            t.outcomes.append((summary, f"summary of the conversation that mentions {t.label}"))
        tail = [Message(*row) for row in graph.session_tail(t.session_id, t.first_seq, TAIL_MESSAGES, now)]
        last = last_agent_message(tail)
        if last is not None:
            (t.also if summary else t.outcomes).append(
                (last.id, f"outcome of the conversation that mentions {t.label}")
            )
    return [t for t in chosen if t.outcomes or t.also]


def outcome_links(threads: Sequence[Thread], links: dict[str, GraphLink]) -> dict[str, GraphLink]:
    """``links`` with every outcome of ``threads`` added (or its reason added to it)."""
    out = dict(links)
    for t in threads:
        for memory_id, why in (*t.outcomes, *t.also):
            link = out.get(memory_id)
            if link is None:
                out[memory_id] = GraphLink(OUTCOME_STRENGTH, [why])
            elif why not in link.reasons:
                out[memory_id] = GraphLink(max(link.strength, OUTCOME_STRENGTH), [*link.reasons, why])
    return out


def equal_match(a: Ranked, b: Ranked) -> bool:
    """Whether two ranked memories match the query equally (see ``EQUAL_MATCH``)."""
    sa, sb = a.signals, b.signals
    return (
        abs(sa.graph - sb.graph) < 1e-9
        and abs(sa.semantic - sb.semantic) <= EQUAL_MATCH
        and abs(sa.keyword - sb.keyword) <= EQUAL_MATCH
    )


def open_first(ranked: Sequence[Ranked], settled: dict[str, str]) -> list[Ranked]:
    """``ranked`` with each memory of a settled ticket (``settled``: memory id -> its
    resolved or closed ticket) moved below the memories of open cases that follow it and
    match equally, and said so in its ``why``. Scores stay with the positions, so they
    still read best-first."""
    out = [
        replace(r, why=(*r.why, f"ticket {settled[r.memory_id]} is settled")) if r.memory_id in settled else r
        for r in ranked
    ]
    for _ in range(len(out)):
        moved = False
        for i in range(len(out) - 1):
            a, b = out[i], out[i + 1]
            if a.memory_id in settled and b.memory_id not in settled and equal_match(a, b):
                out[i], out[i + 1] = replace(b, score=a.score), replace(a, score=b.score)
                moved = True
        if not moved:
            break
    return out


def place(ranked: Sequence[Ranked], threads: Sequence[Thread], top_k: int) -> list[Ranked]:
    """``ranked`` with each thread's outcomes moved up to just below the thread's best-ranked
    message (never down), then the first ``top_k``. A moved outcome takes the score of the
    message above it, so scores still read best-first (its signals stay its own)."""
    if not threads:
        return list(ranked[:top_k])
    by_id = {r.memory_id: r for r in ranked}
    thread_of: dict[str, list[Thread]] = {}
    for t in threads:
        for memory_id in t.anchors:
            thread_of.setdefault(memory_id, []).append(t)
    out: list[Ranked] = []
    placed: set[str] = set()
    expanded: set[str] = set()
    for r in ranked:
        if r.memory_id in placed:
            continue
        out.append(r)
        placed.add(r.memory_id)
        for t in thread_of.get(r.memory_id, ()):
            if t.session_id in expanded:
                continue
            expanded.add(t.session_id)
            for memory_id, _ in t.outcomes:
                o = by_id.get(memory_id)
                if o is None or memory_id in placed:
                    continue
                out.append(replace(o, score=max(o.score, out[-1].score)))
                placed.add(memory_id)
        if len(out) >= top_k:
            break
    return out[:top_k]
