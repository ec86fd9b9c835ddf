"""From a validated store request to what storage writes: entities, nodes and their links.

``memory_record`` completes a ``Prepared`` request with what extraction found and what its
tags say (orders, tickets, identifiers, products); ``with_node_links`` derives the links
between the nodes a memory names (who placed which order, raised which ticket, which
ticket concerns which order) and a new ticket's subject and channel; ``with_known_ids``
adds the bare codes an agent already knows as identifiers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from casegraph.domain.models import Entity, Memory
from casegraph.domain.ticket_models import default_channel, default_subject
from casegraph.extractors import IDENTIFIER, parse_tags, weak_identifiers
from casegraph.storage.memories import MemoryRecord
from casegraph.storage.search import GraphSearch, NodeRefs

# At most this many weak id shapes of one agent are looked up a batch (with_known_ids).
_MAX_WEAK_LOOKUPS = 64
# Entity kinds that become their own node types; the rest become generic Entity nodes.
_OWN_NODES = {"order", "ticket", "customer"}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated store request plus what it links to (before extraction)."""

    memory: Memory
    customers: tuple[str, ...]
    tag_orders: tuple[str, ...]
    tag_tickets: tuple[str, ...]
    learns_customer: str | None = None  # its session's customer, named first by this store


def memory_record(p: Prepared, found: Sequence[Any], vector: np.ndarray) -> MemoryRecord:
    """What storage writes for one prepared store: its entities (extracted, and from its
    tags: orders, tickets, identifiers, products), its nodes and the links between them."""
    entities: dict[tuple[str, str], Entity] = {}
    for e in found:
        entities.setdefault((e.kind, e.key), Entity(kind=e.kind, value=e.value, key=e.key))
    for key in p.tag_orders:
        entities.setdefault(("order", key), Entity(kind="order", value=f"order:{key}", key=key))
    for key in p.tag_tickets:
        entities.setdefault(("ticket", key), Entity(kind="ticket", value=f"ticket:{key}", key=key))
    for key in parse_tags(p.memory.tags).identifiers:  # order:W1588712, ticket:INC0012345
        entities.setdefault(("identifier", key), Entity(kind="identifier", value=key, key=key))
    for product in product_tags(p.memory.tags):
        entities.setdefault(("product", product.key), product)
    all_entities = tuple(entities.values())
    memory = with_entities(p.memory, all_entities)
    return with_node_links(MemoryRecord(
        memory=memory,
        embedding=vector,
        customer_ids=p.customers,
        orders=tuple(e.key for e in all_entities if e.kind == "order"),
        tickets=tuple(e.key for e in all_entities if e.kind == "ticket"),
        others=tuple(e for e in all_entities if e.kind not in _OWN_NODES),
        learns_customer=p.learns_customer,
    ))


def with_node_links(rec: MemoryRecord) -> MemoryRecord:
    """``rec`` with the links between the nodes it names: each of its customers placed each
    of its orders and raised each of its tickets, and each ticket concerns each order. A
    ticket it is the first to name takes its subject (the first sentence) and channel
    (``metadata.channel``) from it."""
    m = rec.memory
    return replace(
        rec,
        placed=tuple((c, o) for o in rec.orders for c in rec.customer_ids),
        raised=tuple((c, t) for t in rec.tickets for c in rec.customer_ids),
        concerns=tuple((t, o) for t in rec.tickets for o in rec.orders),
        ticket_subject=default_subject(m.content) if rec.tickets else "",
        ticket_channel=default_channel(json.dumps(m.metadata, sort_keys=True)) if rec.tickets else None,
    )


def with_entities(m: Memory, entities: tuple[Entity, ...]) -> Memory:
    return replace(m, entities=entities)


def merged(first: Sequence[str], second: Sequence[str]) -> tuple[str, ...]:
    """Both sequences without repeats, first-seen order (entity order is part of a memory)."""
    return tuple(dict.fromkeys((*first, *second)))


def product_tags(tags: Sequence[str]) -> list[Entity]:
    """``product:<name>`` tags name a product for sure (spaCy's small model rarely does).

    The key is the name lower-cased with whitespace collapsed, as NER keys are.
    """
    out = []
    for tag in tags:
        prefix, sep, name = tag.partition(":")
        name = " ".join(name.split())
        if sep and prefix.strip().lower() == "product" and name:
            out.append(Entity(kind="product", value=name, key=name.lower()))
    return out


def with_known_ids(graph: GraphSearch, prepared: Sequence[Prepared], extracted: list[list[Any]]) -> list[list[Any]]:
    """``extracted`` plus the weak id shapes ("Done, QXKZTB departs Friday": all-caps codes,
    5+ digits, ``jane_doe`` without a kind word) that the agent already knows as identifiers,
    from a memory stored before or from this batch: the bot repeats a code bare after the
    customer named it ("my reservation is QXKZTB")."""
    weak = [weak_identifiers(p.memory.content) for p in prepared]
    if not any(weak):
        return extracted
    known = {
        (p.memory.agent_id, e.key) for p, found in zip(prepared, extracted, strict=True)
        for e in found if e.kind == IDENTIFIER
    }
    asked: dict[str, dict[str, None]] = {}
    for p, candidates in zip(prepared, weak, strict=True):
        for e in candidates:
            if (p.memory.agent_id, e.key) not in known:
                asked.setdefault(p.memory.agent_id, {}).setdefault(e.key)
    for agent_id, keys in asked.items():
        refs = NodeRefs(entities=tuple((IDENTIFIER, k) for k in list(keys)[:_MAX_WEAK_LOOKUPS]))
        known.update((agent_id, k) for _, k in graph.resolve(agent_id, refs).entities)
    return [
        [*found, *(e for e in candidates if (p.memory.agent_id, e.key) in known)]
        for p, found, candidates in zip(prepared, extracted, weak, strict=True)
    ]
