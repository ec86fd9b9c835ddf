"""Regex rules for support identifiers (orders, tickets, emails, phones, tracking numbers).

Rules run on the raw text rather than on spaCy tokens: ids such as ``#4521`` or
``+44 20 7946 0958`` split unpredictably into tokens, and raw-text offsets work
the same with or without a statistical model. Keys are computed with the
``keys`` normalisers so text mentions and tags always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .keys import ID_FLAGS, ORDER_PREFIX, TICKET_PREFIX, normalise_order_key, normalise_ticket_key

__all__ = ["ENTITY_KINDS", "RULE_KINDS", "ExtractedEntity", "find_rule_entities"]

ENTITY_KINDS = frozenset(
    {
        "order",
        "ticket",
        "email",
        "phone",
        "tracking",
        "person",
        "org",
        "product",
        "money",
        "date",
        "place",
        "customer",
    }
)


@dataclass(frozen=True, slots=True)
class ExtractedEntity:
    """One entity mention: ``value`` is ``text[start:end]``; ``key`` is the graph node key."""

    kind: str
    value: str
    key: str
    start: int
    end: int


# Free-text ids need 3+ digits: "order 2 items" / "#1" are not references.
_ID = r"([0-9]{3,20})\b(?![.,][0-9])"  # ...and "order 123.45" is not order 123

_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "email": [
        # Lookbehind anchors the match at the start of a run, keeping the scan linear.
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b",
            re.ASCII,
        ),
    ],
    "tracking": [
        re.compile(r"\b1Z[0-9A-Z]{16}\b", ID_FLAGS),  # UPS
        # "tracking [number|no.|#|:|is] <token>": token of 8+ alnum chars containing a digit
        # (so "tracking information" is not an id), or USPS-style spaced digit groups.
        re.compile(
            r"\btracking(?:\s{1,3}(?:number|num|no|nr|id|code|ref)\b\.?)?(?:\s{0,3}(?:is\b|:|\#))?\s{0,3}"
            r"((?=[A-Z]{0,40}[0-9])(?:[0-9]{4}(?:\ [0-9]{4}){1,6}(?:\ [0-9]{1,4})?|[A-Z0-9]{8,40}))\b",
            ID_FLAGS,
        ),
    ],
    # "ticket #1042" must beat the bare "#1042" order rule: longer match wins in _resolve.
    "ticket": [re.compile(rf"{TICKET_PREFIX}{_ID}", ID_FLAGS)],
    "order": [re.compile(rf"(?:{ORDER_PREFIX}|(?<![\w#&/])\#){_ID}", ID_FLAGS)],
    "phone": [
        # International: +CC then groups; also compact "+447946095800".
        re.compile(
            r"(?<![\w+])\+(?:[0-9]{7,15}|[0-9]{1,3}(?:[ .-]|\s?\([0-9]{1,5}\)\s?)?[0-9]{1,5}(?:[ .-][0-9]{1,5}){0,5})(?![0-9])",
            re.ASCII,
        ),
        # North American: (555) 123-4567, 555-123-4567, 555.123.4567
        re.compile(
            r"(?<![\w+.\-])(?:\([0-9]{3}\)\s?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![\w-]|\.[0-9])",
            re.ASCII,
        ),
        re.compile(r"(?<![\w+.\-])[0-9]{3}-[0-9]{4}(?![\w-]|\.[0-9])", re.ASCII),  # local 555-1234
    ],
}
RULE_KINDS = tuple(_PATTERNS)  # doubles as tie-break priority on equal-length overlaps


def _key(kind: str, value: str, m: re.Match[str]) -> str | None:
    if kind == "order":
        return normalise_order_key(value)
    if kind == "ticket":
        return normalise_ticket_key(value)
    if kind == "email":
        return value.lower()
    if kind == "tracking":
        token = m.group(m.lastindex) if m.lastindex else value
        key = token.replace(" ", "").upper()
        return key if len(key) >= 8 else None
    if kind == "phone":
        digits = re.sub(r"[^0-9]", "", value)
        if not 7 <= len(digits) <= 15:
            return None
        return ("+" if value.startswith("+") else "") + digits
    raise AssertionError(kind)


def find_rule_entities(text: str) -> list[ExtractedEntity]:
    """All rule-based id mentions in ``text``, non-overlapping, ordered by position (not de-duplicated)."""
    found: list[tuple[int, int, int, str, str]] = []  # (start, end, priority, kind, key)
    for prio, (kind, patterns) in enumerate(_PATTERNS.items()):
        for pattern in patterns:
            for m in pattern.finditer(text):
                key = _key(kind, m.group(0), m)
                if key:
                    found.append((m.start(), m.end(), prio, kind, key))
    # Longest span wins an overlap ("ticket #1042" over "#1042"), then kind priority.
    found.sort(key=lambda f: (f[0] - f[1], f[2], f[0]))
    taken = bytearray(len(text))  # spans are short, so marking chars keeps this linear
    chosen: list[tuple[int, int, int, str, str]] = []
    for f in found:
        if not any(taken[f[0] : f[1]]):
            taken[f[0] : f[1]] = b"\x01" * (f[1] - f[0])
            chosen.append(f)
    chosen.sort()
    return [ExtractedEntity(kind, text[s:e], key, s, e) for s, e, _, kind, key in chosen]
