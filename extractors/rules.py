"""Rules for support identifiers: orders, tickets, e-mails, phones, tracking numbers, and
every other token shaped like an identifier (``identifiers.py``).

Rules run on the raw text rather than on spaCy tokens: ids such as ``#4521`` or
``+44 20 7946 0958`` split unpredictably into tokens, and raw-text offsets work
the same with or without a statistical model. Keys are computed with the
``keys`` normalisers so text mentions and tags always agree.

Orders and tickets with digit keys (``#4521``, ``order 4521``, ``T-1042``) keep their own
kinds (their graph nodes carry relations); e-mails and phones too. Any other token with
an identifier's shape is an ``identifier`` whose key does not depend on the words around
it, and so is each tracking number (besides its ``tracking`` entity): ``#W1588712`` and
``order W1588712`` meet at the key ``w1588712``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .identifiers import IDENTIFIER, find_identifiers
from .keys import ID_FLAGS, ORDER_PREFIX, TICKET_PREFIX, normalise_order_key, normalise_ticket_key

__all__ = [
    "ENTITY_KINDS",
    "RULE_KINDS",
    "ExtractedEntity",
    "find_rule_entities",
    "identifier_mentions",
    "weak_identifiers",
]

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
        IDENTIFIER,
    }
)


@dataclass(frozen=True, slots=True)
class ExtractedEntity:
    """One entity mention: ``value`` is ``text[start:end]``; ``key`` is the graph node key.

    ``id_kind`` is an identifier's typed kind ("order", "reservation", "account"... or
    "identifier" when no word says), ``""`` for other kinds; it is never part of the key.
    """

    kind: str
    value: str
    key: str
    start: int
    end: int
    id_kind: str = ""


# Free-text ids need 3+ digits: "order 2 items" / "#1" are not references; "order 123.45"
# is not order 123, nor "order 112-3456789-1234567" (an identifier).
# The rest of "ABC-123", "jane_doe_42" or "123/AB34" is one id ("1042/1043" is two numbers).
_NOT_JOINED = r"(?![-_][A-Za-z0-9]|/[0-9/]{0,40}[A-Za-z])"
_ID = rf"([0-9]{{3,20}})\b(?![.,][0-9]){_NOT_JOINED}"

_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "email": [
        # Lookbehind anchors the match at the start of a run, keeping the scan linear.
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b",
            re.ASCII,
        ),
    ],
    "tracking": [
        re.compile(rf"\b1Z[0-9A-Z]{{16}}\b{_NOT_JOINED}", ID_FLAGS),  # UPS
        # "tracking [number|no.|#|:|is] <token>": token of 8+ alnum chars containing a digit
        # (so "tracking information" is not an id), or USPS-style spaced digit groups.
        re.compile(
            r"\btracking(?:\s{1,3}(?:number|num|no|nr|id|code|ref)\b\.?)?(?:\s{0,3}(?:is\b|:|\#))?\s{0,3}"
            r"((?=[A-Z]{0,40}[0-9])(?:[0-9]{4}(?:\ [0-9]{4}){1,6}(?:\ [0-9]{1,4})?|[A-Z0-9]{8,40}))\b"
            + _NOT_JOINED,
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


def _token_span(kind: str, m: re.Match[str]) -> tuple[int, int]:
    """Where the id itself is in a match that may include its prefix ("tracking no. X")."""
    return m.span(m.lastindex) if kind == "tracking" and m.lastindex else m.span()


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
    """All rule-based id mentions in ``text``, ordered by position (not de-duplicated).

    Mentions do not overlap, except that a tracking number is also an identifier.
    """
    # (start, end, priority, kind, key, where the id itself starts and ends)
    found: list[tuple[int, int, int, str, str, int, int]] = []
    for prio, (kind, patterns) in enumerate(_PATTERNS.items()):
        for pattern in patterns:
            for m in pattern.finditer(text):
                key = _key(kind, m.group(0), m)
                if key:
                    found.append((m.start(), m.end(), prio, kind, key, *_token_span(kind, m)))
    # Longest span wins an overlap ("ticket #1042" over "#1042"), then kind priority.
    found.sort(key=lambda f: (f[0] - f[1], f[2], f[0]))
    taken = bytearray(len(text))  # spans are short, so marking chars keeps this linear
    out: list[ExtractedEntity] = []
    for s, e, _, kind, key, ts, te in found:
        if not any(taken[s:e]):
            taken[s:e] = b"\x01" * (e - s)
            out.append(ExtractedEntity(kind, text[s:e], key, s, e))
            if kind == "tracking":
                out.append(ExtractedEntity(IDENTIFIER, text[ts:te], key.casefold(), ts, te, "tracking"))
    for tok in find_identifiers(text):
        if not any(taken[tok.start : tok.end]):
            out.append(ExtractedEntity(IDENTIFIER, text[tok.start : tok.end], tok.key, tok.start, tok.end, tok.kind))
    out.sort(key=lambda x: (x.start, -x.end))
    return out


def identifier_mentions(text: str) -> dict[str, str]:
    """``{key: first mention}`` of the identifiers ``text`` names, as a store extracts them."""
    out: dict[str, str] = {}
    for e in find_rule_entities(text):
        if e.kind == IDENTIFIER:
            out.setdefault(e.key, e.value)
    return out


def weak_identifiers(text: str) -> list[ExtractedEntity]:
    """Tokens of ``text`` shaped like an id that counts only after a kind word, said without
    one ("Done, QXKZTB departs Friday"), and not part of another rule's mention. A store
    links them when the agent already has that identifier (another memory named it)."""
    weak = [t for t in find_identifiers(text, weak=True) if t.weak]
    if not weak:  # most texts: one token scan, no rules
        return []
    taken = bytearray(len(text))
    for e in find_rule_entities(text):
        taken[e.start : e.end] = b"\x01" * (e.end - e.start)
    return [
        ExtractedEntity(IDENTIFIER, text[t.start : t.end], t.key, t.start, t.end, t.kind)
        for t in weak
        if not any(taken[t.start : t.end])
    ]
