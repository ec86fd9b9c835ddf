"""What a recall query names, and the query with those names masked.

``read`` finds the graph nodes a query may name (customers by id or name, orders, tickets,
e-mails, phones, identifiers of any shape...) with where they appear. Once the graph has
resolved them, ``masked`` blanks them out of the text given to the embedding and keyword
signals: the graph signal already accounts for "Jane Doe" or "order 4521", and left in, the
name would make every memory that happens to contain "Jane" look similar, and the BM25
index (which drops digits) would match every memory that contains the word "order".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casegraph.extractors import (
    IDENTIFIER,
    ExtractedEntity,
    candidate_customer_ids,
    find_identifiers,
    find_rule_entities,
    slugify,
)
from casegraph.storage.search import NodeRefs

# Query entity kinds that can name a generic Entity node.
ENTITY_KINDS = ("email", "phone", "tracking", "person", "product", "org", IDENTIFIER)


@dataclass(frozen=True, slots=True)
class Mention:
    kind: str
    key: str
    start: int
    end: int


def read(query: str, extractor: Any) -> tuple[NodeRefs, list[Mention]]:
    """Nodes the query may name (not yet checked against the graph), and where."""
    found = extractor.extract(query)
    mentions = [Mention(e.kind, e.key, e.start, e.end) for e in found]
    mentions += [Mention(IDENTIFIER, t.key, t.start, t.end) for t in find_identifiers(query, weak=True)]
    return _refs(query, found), mentions


def rule_refs(query: str) -> NodeRefs:
    """The part of ``read``'s nodes that the rules alone find (ids, e-mails, phones and
    customer names as word n-grams): known in ~10 µs, before the statistical model has run."""
    return _refs(query, find_rule_entities(query))


def _refs(query: str, found: list[ExtractedEntity]) -> NodeRefs:
    customers = set(candidate_customer_ids(query))
    customers.update(slugify(e.value) for e in found if e.kind == "person")
    orders = {e.key for e in found if e.kind == "order"}
    entities = {(e.kind, e.key) for e in found if e.kind in ENTITY_KINDS}
    # The same id meets the same node whatever words surround it: a digits-only id is an
    # Order when a memory said "order 123456" or "#123456", an identifier when it said
    # "booking 123456" or "123456789" alone; a tracking number stored before identifiers
    # existed is only a tracking node (upper-case key).
    ids = {e.key for e in found if e.kind == IDENTIFIER}
    # "status of QXKZTB": a shape that needs a kind word in a memory is worth a lookup here.
    ids.update(t.key for t in find_identifiers(query, weak=True))
    entities.update((IDENTIFIER, k) for k in ids)
    orders.update(k for k in ids if k.isdigit() and len(k) <= 20)
    entities.update((IDENTIFIER, k) for k in orders)
    entities.update(("tracking", k.upper()) for k in ids if len(k) >= 8 and k.isalnum())
    return NodeRefs(
        customers=tuple(sorted(c for c in customers if c)),
        orders=tuple(sorted(orders)),
        tickets=tuple(sorted({e.key for e in found if e.kind == "ticket"})),
        entities=tuple(sorted(entities)),
    )


def without(refs: NodeRefs, known: NodeRefs) -> NodeRefs:
    """``refs`` less every node ``known`` names."""
    def left(mine: tuple, theirs: tuple) -> tuple:
        drop = set(theirs)
        return tuple(x for x in mine if x not in drop)

    return NodeRefs(
        customers=left(refs.customers, known.customers),
        orders=left(refs.orders, known.orders),
        tickets=left(refs.tickets, known.tickets),
        entities=left(refs.entities, known.entities),
    )


def within(refs: NodeRefs, wanted: NodeRefs) -> NodeRefs:
    """``refs`` less every node ``wanted`` does not name."""
    return without(refs, without(refs, wanted))


def joined(a: NodeRefs, b: NodeRefs) -> NodeRefs:
    """Every node ``a`` or ``b`` names, each once, sorted."""
    return NodeRefs(
        customers=tuple(sorted({*a.customers, *b.customers})),
        orders=tuple(sorted({*a.orders, *b.orders})),
        tickets=tuple(sorted({*a.tickets, *b.tickets})),
        entities=tuple(sorted({*a.entities, *b.entities})),
    )


def masked(
    query: str, resolved: NodeRefs, mentions: list[Mention], spans: Sequence[tuple[int, int]] = ()
) -> str:
    """``query`` without the mentions of nodes that ``resolved`` holds, nor the ``spans``
    (customer aliases it names) ("" if nothing is left)."""
    spans = list(spans)
    for m in mentions:
        if (
            (m.kind in ("order", IDENTIFIER) and m.key in resolved.orders)
            or (m.kind == "ticket" and m.key in resolved.tickets)
            or (m.kind in ("order", IDENTIFIER) and (IDENTIFIER, m.key) in resolved.entities)
            or (m.kind == IDENTIFIER and ("tracking", m.key.upper()) in resolved.entities)
            or (m.kind, m.key) in resolved.entities
        ):
            spans.append((m.start, m.end))
    for customer in resolved.customers:
        words = [re.escape(w) for w in customer.split("-") if w]
        pattern = r"(?<!\w)" + r"\W{1,3}".join(words) + r"(?:'s)?(?!\w)"
        spans.extend(x.span() for x in re.finditer(pattern, query, re.IGNORECASE))
    if not spans:
        return query
    out, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            out.append(query[last:start])
            last = end
        else:
            last = max(last, end)
    out.append(query[last:])
    text = " ".join("".join(out).split())
    return text if re.search(r"\w", text) else ""
