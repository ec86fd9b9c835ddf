"""Session-end consolidation: an extractive summary memory of what a session said.

``summarise`` picks the session's key sentences (not generated text: every sentence of a
summary was said in the session), lists the identifiers it mentioned and states its
outcome - the last sentence that states something (a refund approved, a replacement
shipped, a promise made). Pure functions, no I/O; memory.py stores the result as one
memory linked to the session (SUMMARISES), its customer, orders and tickets.

A sentence scores for: the importance of its memory, naming identifiers (orders, tickets,
amounts...), stating an outcome, and being central to the session (cosine of its memory's
embedding to the session's mean embedding). Very short sentences and repeats are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from casegraph.domain.models import Memory
from casegraph.domain.states import extract_states

MAX_KEY_SENTENCES = 3
MAX_LISTED_ENTITIES = 12
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_OUTCOME = re.compile(
    r"\b(?:promised|promise|agreed|will|resolved|refund\w*|replac\w*|approved|shipped|sent|"
    r"escalated|cancell?ed|credited|voucher|booked|scheduled|confirmed|arranged|issued|closed)\b",
    re.IGNORECASE,
)
_ID_KINDS = ("order", "ticket", "tracking", "identifier", "email", "phone", "money")
_LISTED_KINDS = (
    "order", "ticket", "tracking", "identifier", "email", "phone", "money", "product", "person", "org"
)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    text: str
    key_sentences: tuple[str, ...]
    outcome: str | None
    entities: tuple[str, ...]
    orders: tuple[str, ...]
    tickets: tuple[str, ...]
    importance: float
    source_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    memory_index: int
    position: int  # order in the session


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def summarise(
    memories: Sequence[Memory],
    embeddings: np.ndarray | None = None,
    max_sentences: int = MAX_KEY_SENTENCES,
) -> SessionSummary | None:
    """An extractive summary of ``memories`` (in session order); None for fewer than two."""
    if len(memories) < 2:
        return None  # one memory is its own summary: a copy would only be a duplicate
    flat = [(i, s) for i, m in enumerate(memories) for s in split_sentences(m.content)]
    sentences = [_Sentence(text, i, position) for position, (i, text) in enumerate(flat)]
    centrality = _centrality(embeddings, len(memories))

    def score(s: _Sentence) -> float:
        m = memories[s.memory_index]
        ids = sum(1 for e in m.entities if e.kind in _ID_KINDS and e.value in s.text)
        value = 0.5 * m.importance + 0.3 * centrality[s.memory_index] + 0.15 * min(ids, 2)
        if extract_states(s.text):
            value += 0.3
        elif _OUTCOME.search(s.text):
            value += 0.15
        if len(s.text.split()) < 4:
            value -= 0.5
        return value

    outcome = next(
        (s for s in reversed(sentences) if extract_states(s.text) or _OUTCOME.search(s.text)), None
    )
    chosen: list[_Sentence] = []
    seen: set[str] = set()
    for s in sorted(sentences, key=lambda s: (-score(s), s.position)):
        norm = " ".join(s.text.lower().split())
        if norm in seen or (outcome is not None and s.position == outcome.position):
            continue
        seen.add(norm)
        chosen.append(s)
        if len(chosen) >= max(max_sentences - (1 if outcome else 0), 1):
            break
    key = [s.text for s in sorted(chosen, key=lambda s: s.position)]

    entities = _entities(memories)
    parts = [" ".join(_terminated(k) for k in key)]
    if outcome is not None:
        parts.append(f"Outcome: {_terminated(outcome.text)}")
    if entities:
        parts.append(f"Mentioned: {', '.join(entities)}.")
    return SessionSummary(
        text=" ".join(p for p in parts if p),
        key_sentences=tuple(key),
        outcome=outcome.text if outcome else None,
        entities=tuple(entities),
        orders=tuple(dict.fromkeys(o for m in memories for o in m.orders)),
        tickets=tuple(dict.fromkeys(t for m in memories for t in m.tickets)),
        importance=max(m.importance for m in memories),
        source_ids=tuple(m.id for m in memories),
    )


def _centrality(embeddings: np.ndarray | None, n: int) -> list[float]:
    if embeddings is None or len(embeddings) != n or n == 0:
        return [0.0] * n
    centre = embeddings.mean(axis=0)
    norm = float(np.linalg.norm(centre))
    if norm == 0.0:
        return [0.0] * n
    return [max(float(v), 0.0) for v in (embeddings @ (centre / norm)).tolist()]


def _entities(memories: Sequence[Memory]) -> list[str]:
    out: dict[str, None] = {}
    ids: set[str] = set()  # identifier keys listed (a tracking number is also an identifier)
    for m in memories:
        for e in m.entities:
            if e.kind not in _LISTED_KINDS:
                continue
            if e.kind in ("tracking", "identifier"):
                key = e.key.casefold()
                if e.kind == "identifier" and key in ids:
                    continue
                ids.add(key)
            if e.kind == "order":
                label = f"order #{e.key}"
            elif e.kind == "ticket":
                label = f"ticket {e.key}"
            else:
                label = e.value
            out.setdefault(label)
    return list(out)[:MAX_LISTED_ENTITIES]


def _terminated(sentence: str) -> str:
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."
