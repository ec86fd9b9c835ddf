"""How related two tickets are, and the strongest paths between them: pure functions.

A RELATED edge's weight combines its reasons with a noisy-or,
``1 - prod(1 - w_i)``: every reason adds confidence, none can push the weight past 1,
and one strong reason (a shared order) outweighs several weak ones (a shared city).

    reason                          weight
    named together in one memory    0.90
    shared order                    0.80
    shared tracking number          0.70
    shared identifier (W1588712...) 0.70  (a tracking number is one too)
    same customer                   0.50
    shared e-mail / phone           0.50
    shared product                  0.40
    shared person / organisation    0.25
    shared place                    0.10
    similar wording (cosine s)      0.5 * s, only when s >= the similarity threshold

Money amounts and dates are never reasons: "$20" or "yesterday" relate nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from casegraph.domain.ticket_models import Reason, RelatedTicket, Relation

MENTION_WEIGHT = 0.9
ORDER_WEIGHT = 0.8
CUSTOMER_WEIGHT = 0.5
ENTITY_WEIGHTS: Mapping[str, float] = {
    "tracking": 0.7,
    "identifier": 0.7,
    "email": 0.5,
    "phone": 0.5,
    "product": 0.4,
    "person": 0.25,
    "org": 0.25,
    "place": 0.1,
}
SIMILARITY_SCALE = 0.5
# Entity kinds that relate tickets (everything else, e.g. money and dates, does not).
RELATING_ENTITY_KINDS = tuple(ENTITY_WEIGHTS)


@dataclass(slots=True)
class Evidence:
    """What two tickets share (gathered from the graph and the vectors)."""

    mentioned_together: bool = False
    orders: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    entities: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, key) -> value
    similarity: float | None = None


def noisy_or(weights: Iterable[float]) -> float:
    """Noisy-or of reason weights, rounded to 3 decimals."""
    remaining = 1.0
    for w in weights:
        remaining *= 1.0 - min(max(w, 0.0), 1.0)
    return round(1.0 - remaining, 3)


def relate(a: str, b: str, evidence: Evidence, similarity_threshold: float) -> Relation | None:
    """The relation between tickets ``a`` and ``b``, or None when nothing relates them."""
    reasons: list[Reason] = []
    if evidence.mentioned_together:
        reasons.append(Reason("mention", "named together in one memory", MENTION_WEIGHT))
    reasons += [Reason("order", f"shared order #{o}", ORDER_WEIGHT) for o in sorted(evidence.orders)]
    reasons += [
        Reason("customer", f"same customer {c}", CUSTOMER_WEIGHT) for c in sorted(evidence.customers)
    ]
    for (kind, _key), value in sorted(evidence.entities.items()):
        weight = ENTITY_WEIGHTS.get(kind)
        if weight is not None:
            reasons.append(Reason(kind, f"shared {kind} {value}", weight))
    s = evidence.similarity
    if s is not None and s >= similarity_threshold:
        reasons.append(Reason("similar", f"similar wording ({s:.2f})", round(SIMILARITY_SCALE * s, 3)))
    if not reasons:
        return None
    return Relation(a, b, noisy_or(r.weight for r in reasons), tuple(reasons))


EdgeLoader = Callable[[set[str]], Mapping[str, Sequence[Relation]]]


def strongest_paths(
    sources: Sequence[str], depth: int, min_weight: float, load: EdgeLoader
) -> dict[str, list[RelatedTicket]]:
    """For each source ticket, every ticket within ``depth`` RELATED hops, strongest first.

    A path's weight is the product of its edge weights; each ticket is reported with its
    strongest path, and paths weaker than ``min_weight`` are not followed. ``load`` returns
    the RELATED edges of a set of tickets (edges weaker than ``min_weight`` may be left
    out); it is called once per hop for all sources together, so a caller answering many
    tickets at once pays ``depth`` round trips, not ``depth * len(sources)``.
    """
    best: dict[str, dict[str, RelatedTicket]] = {s: {} for s in sources}
    # Per source: ticket -> (path weight, hops, tickets in between).
    frontier: dict[str, dict[str, tuple[float, int, tuple[str, ...]]]] = {
        s: {s: (1.0, 0, ())} for s in sources
    }
    edges: dict[str, Sequence[Relation]] = {}
    for _ in range(depth):
        wanted = {t for f in frontier.values() for t in f} - edges.keys()
        if wanted:
            loaded = load(wanted)
            edges.update({t: loaded.get(t, ()) for t in wanted})
        next_frontier: dict[str, dict[str, tuple[float, int, tuple[str, ...]]]] = {}
        for source, reached in frontier.items():
            grown: dict[str, tuple[float, int, tuple[str, ...]]] = {}
            for ticket, (weight, hops, via) in reached.items():
                for rel in edges[ticket]:
                    other = rel.b if rel.a == ticket else rel.a
                    path_weight = weight * rel.weight
                    if other == source or path_weight < min_weight:
                        continue
                    current = best[source].get(other)
                    if current is not None and path_weight <= current.weight:
                        continue
                    path_via = via + (ticket,) if hops else ()
                    best[source][other] = RelatedTicket(
                        ticket_id=other,
                        weight=path_weight,
                        hops=hops + 1,
                        via=path_via,
                        reasons=_path_reasons(path_via, weight, rel.reasons),
                    )
                    grown[other] = (path_weight, hops + 1, path_via)
            if grown:
                next_frontier[source] = grown
        frontier = next_frontier
        if not frontier:
            break
    return {
        s: sorted(
            (RelatedTicket(r.ticket_id, round(r.weight, 3), r.hops, r.via, r.reasons) for r in found.values()),
            key=lambda r: (-r.weight, r.hops, r.ticket_id),
        )
        for s, found in best.items()
    }


def _path_reasons(via: tuple[str, ...], weight_before: float, last: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """A direct relation keeps its reasons; a longer path says which tickets it went through."""
    if not via:
        return last
    return (Reason("via", "via " + " → ".join(via), round(weight_before, 3)), *last)
