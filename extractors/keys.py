"""Normalised graph keys: order/ticket/customer ids, name slugs and tags.

The regex fragments for "order …" / "ticket …" prefixes live here (not in
``rules``) so the free-text matchers and the normalisers share one grammar:
whatever ``rules`` matches in text, the normalisers here accept verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

from .identifiers import IDENTIFIER, MAX_ID_CHARS, identifier_key

__all__ = [
    "CUSTOMER_ID_RE",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "InvalidTagError",
    "TagLinks",
    "candidate_customer_ids",
    "normalise_customer_id",
    "normalise_order_key",
    "normalise_ticket_key",
    "parse_tags",
    "slugify",
    "validate_tags",
]

MAX_TAGS = 50
MAX_TAG_LENGTH = 100
CUSTOMER_ID_RE = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,127}")

# Bounded whitespace (not \s*) keeps backtracking constant on hostile input
# such as "order" followed by thousands of spaces.
_S = r"\s{0,3}"
_NUM_LABEL = rf"(?:{_S}(?:number|num|no|nr|id)\b\.?)?"  # "no." / "number" / "id"
_SEP = rf"{_S}[:\-]?{_S}\#?{_S}"  # "order: 4521", "order #4521", "ORD-88213"
ORDER_PREFIX = rf"\b(?:order|ord)\b\.?{_NUM_LABEL}{_SEP}"
TICKET_PREFIX = rf"(?:\b(?:ticket|case|tkt)\b\.?{_NUM_LABEL}{_SEP}|\bt-)"
# re.ASCII: with Unicode + IGNORECASE, [a-z] would also match "ſ"/"K" (Kelvin).
ID_FLAGS = re.IGNORECASE | re.ASCII

_ORDER_KEY_RE = re.compile(rf"(?:{ORDER_PREFIX}|\#)?([0-9]{{1,20}})", ID_FLAGS)
_TICKET_KEY_RE = re.compile(rf"(?:{TICKET_PREFIX}|\#)?([0-9]{{1,20}})", ID_FLAGS)

# Unicode categories refused in tags: control chars, lone surrogates (break
# UTF-8/JSON encoding) and line/paragraph separators.
_BAD_TAG_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_LINK_KINDS = ("customer", "order", "ticket")
# An identifier in an order/ticket tag: the token grammar identifiers.py extracts.
_TAG_ID_RE = re.compile(r"[a-z0-9]+(?:[-_./][a-z0-9]+)*", re.ASCII)


class InvalidTagError(ValueError):
    """A tag is malformed (empty, too long, control chars, bad link id...)."""


@dataclass(frozen=True)
class TagLinks:
    """Graph nodes that ``customer:``/``order:``/``ticket:`` tags link to (normalised keys).

    An order or ticket id that is not digits (``order:W1588712``, ``ticket:INC0012345``)
    names an identifier (``identifiers``: keys as ``identifier_key`` makes them), the node
    the same id in a memory's text links to.
    """

    customers: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()


def normalise_order_key(s: str) -> str:
    """Return the digits-only order key for ``#4521``, ``4521``, ``ORD-4521``, ``order no. 4521`` ...

    Raises ValueError if ``s`` is not exactly one order reference.
    """
    m = _ORDER_KEY_RE.fullmatch(s.strip()) if isinstance(s, str) else None
    if m is None:
        raise ValueError(f"not an order number: {_short(s)}")
    return m.group(1)


def normalise_ticket_key(s: str) -> str:
    """Return the canonical ticket key ``T-<digits>`` for ``T-1042``, ``1042``, ``TKT-1042``, ``case #1042`` ...

    Raises ValueError if ``s`` is not exactly one ticket reference.
    """
    m = _TICKET_KEY_RE.fullmatch(s.strip()) if isinstance(s, str) else None
    if m is None:
        raise ValueError(f"not a ticket number: {_short(s)}")
    return f"T-{m.group(1)}"


def normalise_customer_id(s: str) -> str:
    """Trim, lower-case and turn whitespace runs into '-'; result must match ``CUSTOMER_ID_RE``.

    Raises ValueError otherwise (e.g. empty, non-ASCII, '/' or other punctuation).
    """
    if not isinstance(s, str):
        raise ValueError(f"customer id must be a string, got {type(s).__name__}")
    cid = re.sub(r"\s+", "-", s.strip().lower())
    if not CUSTOMER_ID_RE.fullmatch(cid):
        raise ValueError(
            f"invalid customer id {_short(s)}: use 1-128 chars of a-z, 0-9, '.', '_', '@', '+', '-' "
            "starting with a letter or digit"
        )
    return cid


def _ascii_words(text: str) -> list[str]:
    # casefold first so "ß" -> "ss"; NFKD then drops accents ("José" -> "jose").
    folded = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", folded)


def slugify(name: str) -> str:
    """Slug used as a customer key for a person's name: ``"Jane Doe"`` -> ``"jane-doe"``.

    Accents are folded to ASCII; returns ``""`` if nothing alphanumeric remains.
    """
    return "-".join(_ascii_words(name))[:128].strip("-")


def is_stop_word(word: str) -> bool:
    """Whether ``word`` (lower-case) is an English stop word ("the", "is", "what"...): spaCy's list."""
    return word in STOP_WORDS


def _is_stop(word: str) -> bool:
    # Single letters come from split contractions ("what's" -> "what", "s").
    return word in STOP_WORDS or (len(word) == 1 and word.isalpha())


def candidate_customer_ids(text: str, max_candidates: int = 100) -> list[str]:
    """Slugs of 1- to 3-word n-grams of ``text``, to resolve customers named in a recall query.

    ``"Jane Doe previous interactions"`` yields ``"jane-doe"`` among others. N-grams made only of
    stop-words are skipped; the list is ordered by position and capped at ``max_candidates``.
    """
    words = _ascii_words(text)
    seen: dict[str, None] = {}
    for i in range(len(words)):
        for n in (1, 2, 3):
            gram = words[i : i + n]
            if len(gram) < n or all(_is_stop(w) for w in gram):
                continue
            slug = "-".join(gram)
            if len(slug) <= 128:
                seen.setdefault(slug)
            if len(seen) >= max_candidates:
                return list(seen)
    return list(seen)


def _short(value: object, limit: int = 40) -> str:
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


def _clean_tag(tag: object) -> str:
    if not isinstance(tag, str):
        raise InvalidTagError(f"tag must be a string, got {type(tag).__name__}")
    cleaned = tag.strip()
    if not cleaned:
        raise InvalidTagError("tag must not be empty")
    if len(cleaned) > MAX_TAG_LENGTH:
        raise InvalidTagError(f"tag {_short(cleaned)} is longer than {MAX_TAG_LENGTH} characters")
    if any(unicodedata.category(c) in _BAD_TAG_CATEGORIES for c in cleaned):
        raise InvalidTagError(f"tag {_short(cleaned)} contains control characters")
    return cleaned


def _link(tag: str) -> tuple[str, str] | None:
    """(kind, key) for a ``customer:``/``order:``/``ticket:`` tag, None for a plain tag."""
    prefix, sep, rest = tag.partition(":")
    kind = prefix.strip().lower()
    if not sep or kind not in _LINK_KINDS:
        return None
    rest = rest.strip()
    if not rest:
        raise InvalidTagError(f"tag {_short(tag)} has an empty {kind} id")
    if kind != "customer" and not any(c.isdigit() for c in rest):
        raise InvalidTagError(f"tag {_short(tag)}: a {kind} id needs digits, e.g. {kind}:1042")
    normalise = {
        "customer": normalise_customer_id,
        "order": normalise_order_key,
        "ticket": normalise_ticket_key,
    }[kind]
    try:
        return kind, normalise(rest)
    except ValueError as exc:
        key = identifier_key(rest)
        if kind != "customer" and len(key) <= MAX_ID_CHARS and _TAG_ID_RE.fullmatch(key):
            return IDENTIFIER, key
        raise InvalidTagError(f"tag {_short(tag)}: {exc}") from None


def _parse(tags: Sequence[str]) -> tuple[list[str], TagLinks]:
    if isinstance(tags, (str, bytes)):
        # A bare string would otherwise be iterated character by character.
        raise InvalidTagError("tags must be a list of strings, not a single string")
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        raise InvalidTagError(f"too many tags: {len(tags)} (at most {MAX_TAGS})")
    cleaned: dict[str, None] = {}
    links: dict[str, dict[str, None]] = {k: {} for k in (*_LINK_KINDS, IDENTIFIER)}
    for tag in tags:
        tag = _clean_tag(tag)
        cleaned.setdefault(tag)
        if (link := _link(tag)) is not None:
            links[link[0]].setdefault(link[1])
    return list(cleaned), TagLinks(
        customers=tuple(links["customer"]),
        orders=tuple(links["order"]),
        tickets=tuple(links["ticket"]),
        identifiers=tuple(links[IDENTIFIER]),
    )


def validate_tags(tags: Sequence[str]) -> list[str]:
    """Return the tags stripped and de-duplicated (order kept); raise InvalidTagError for bad ones.

    At most ``MAX_TAGS`` tags of at most ``MAX_TAG_LENGTH`` chars; link tags must carry a valid id.
    """
    return _parse(tags)[0]


def parse_tags(tags: Sequence[str]) -> TagLinks:
    """Collect the nodes linked by ``customer:<id>``, ``order:<id>`` and ``ticket:<id>`` tags.

    An order/ticket id that is not digits links an identifier (``TagLinks.identifiers``).
    Plain tags (anything else, including other ``key:value`` tags) are validated but not linked.
    Raises InvalidTagError on the first malformed tag.
    """
    return _parse(tags)[1]
