"""Identifiers by their shape: ``#W1588712``, ``M20IZO``, ``RMA-12345``, ``jane_doe_6699``...

Support chats name orders, bookings, accounts and parcels in whatever format the shop,
airline or helpdesk uses, so a list of formats always misses one. A token is taken for an
identifier when it *looks* like one:

- letters and digits mixed, with 5+ digits (``W1588712``, ``INC0012345``, ``3fa85f64``), or
  upper-case with 3+ digits in 5+ chars (``AA123``), or upper-case with any digit in 6+
  chars (``M20IZO``, ``1Z999AA1…``);
- a leading ``#`` before letters and digits mixed (``#A12``, ``#W1588712``);
- parts joined by ``_`` or ``-`` with digits: a handle (``firstname_lastname_6699``), an
  upper-case prefix (``RMA-12345``, ``SKU-4431-B``) or 5+ digits (UUIDs); ``.`` and ``/``
  join parts the same way (``x12y.3456``, ``INV/2023-24/0012``, ``12/AB34``) unless they
  make a file name, domain, decimal, version, date or path (``orders/W1588712`` is a path
  to ``W1588712``);
- 9+ digits alone, or 12+ digits in dash-joined groups (``112-3456789-1234567``).

Weaker shapes count only right after a word that says what they are ("reservation
QXKZTB", "account jane_doe", "booking 48213", "user jdoe84"): all-caps words, 5+ digits,
short letter-digit mixes, underscore names without digits.

Never identifiers: plain words, short numbers (``#1``, "2 items"), prices (``USD100``,
``19.99``), dates and times (``2024-01-15``, ``15jan2024``, ``10am``), versions (``v2``,
``1.2.3``), units and sizes (``16GB``, ``1920x1080``, ``30-day``), and anything glued to
a dot, ``@`` or ``$`` (file names, domains, e-mail parts, amounts).

The key is the token case-folded, without ``#``, markdown or quotes: the same id said with
or without "order" in front meets the same key. The word before it only gives the typed
kind (order, ticket, reservation, booking, tracking, account, ...), ``identifier`` when
nothing says. Everything here is linear in the text: one token scan with bounded,
possessive patterns, and a look-back of at most ``_LOOKBACK`` characters per candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ID_KINDS", "IDENTIFIER", "IdToken", "find_identifiers", "identifier_key", "split_handle"]

IDENTIFIER = "identifier"  # the entity kind, and the typed kind when no word says more
MAX_ID_CHARS = 64

# Words that say what the next token is -> its typed kind.
_KIND_WORDS: dict[str, tuple[str, ...]] = {
    "order": ("order", "ord", "purchase", "po"),
    "ticket": ("ticket", "tkt", "case", "incident", "inc", "request", "req", "issue"),
    "reservation": ("reservation", "rez", "res", "pnr", "locator", "itinerary"),
    "booking": ("booking", "confirmation", "conf"),
    "tracking": ("tracking", "shipment", "parcel", "package", "consignment", "waybill", "awb"),
    "account": ("account", "acct", "acc", "username", "user", "handle", "login", "member",
                "membership", "profile", "customer", "userid", "uid"),
    "invoice": ("invoice", "inv", "receipt", "bill"),
    "return": ("rma", "return"),
    "product": ("sku", "item", "product", "part", "model", "serial", "device", "imei"),
    "payment": ("payment", "transaction", "txn", "refund", "charge"),
    "voucher": ("voucher", "coupon", "promo", "giftcard"),
}
ID_KINDS = (IDENTIFIER, *_KIND_WORDS)
_WORD_KIND = {w: kind for kind, words in _KIND_WORDS.items() for w in words}
# Letter prefixes inside a token that say its kind (RMA-123, INC0012345, 1Z... is UPS).
_PREFIX_KIND = {
    "ord": "order", "po": "order", "inc": "ticket", "tkt": "ticket", "req": "ticket", "ritm": "ticket",
    "cs": "ticket", "rma": "return", "sku": "product", "inv": "invoice", "acc": "account",
    "acct": "account", "res": "reservation", "pnr": "reservation", "bk": "booking", "bkg": "booking",
    "txn": "payment", "1z": "tracking",
}

_LOOKBACK = 48
# Between a kind word and its id: "order no. 4521", "booking reference: QX12", "account (jdoe84)".
_FILLERS = frozenset("number num no nos nr id ids code ref reference locator name is was".split())
# The look-back is read backwards, one word at a time, by an anchored match: a constant
# cost per candidate (a search for "<kind word> ...$" would try every start in the window).
_BACK = re.compile(r"[\s:#=*_\"'`(\[{<“‘.\-]{1,6}([A-Za-z]{1,20})(?![A-Za-z])")

# A candidate token: ASCII letters/digits joined by _ or - (and . or /, sorted out by
# _pieces), optionally after '#', not glued to a word, '@', '.', '$'... (lookbehind), with
# a digit or '_' or 5 capitals (lookahead: plain words never reach Python), taken whole
# (possessive: no backtracking), and not followed by a word character or '@'.
_TOKEN = re.compile(
    r"(?<![^\W_]|[@#&.$£€+-])(\#?)(?=[A-Za-z./-]*+[0-9_]|[A-Z]{5})"
    r"([A-Za-z0-9_-]++(?:[./][A-Za-z0-9_-]++)*+)(?![\w@])",
)
_VERSIONISH = re.compile(r"v?[0-9]+", re.IGNORECASE | re.ASCII)
_HAS_DIGIT = re.compile(r"[0-9]")
_LOWER = re.compile(r"[a-z]")
_RUNS = re.compile(r"[A-Za-z]+|[0-9]+")
_SEPS = re.compile(r"[-_]+")
# Letter runs of a date: 15jan2024, May2024, Q3-2024, FY2025.
_DATE_WORDS = frozenset(
    "q fy jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july "
    "august september october november december".split()
)
_CURRENCIES = frozenset(
    "usd eur gbp cad aud nzd jpy cny inr chf sek nok dkk rs rp idr brl mxn zar sgd hkd aed sar pln try".split()
)
# Time and measure suffixes after a number: 10am, 24h, 16GB, 1080p, 3rd, 100mg, 12months.
_UNIT = re.compile(
    r"[0-9]{5,6}mah|[0-9]{1,4}(?:am|pm|h|hrs?|hours?|mins?|minutes?|s|secs?|seconds?|d|days?|wks?|weeks?|mo|months?|"
    r"y|yrs?|years?|st|nd|rd|th|k|m|b|bn|[kmgtp]b|bytes?|[kmµ]?g|lbs?|oz|[mcd]?l|[cmk]?m|in|ft|p|"
    r"[kmg]?hz|[km]?w|v|mah|x|pcs?|pieces?|items?|pax|people|persons?|nights?|stars?|percent|pct)",
    re.IGNORECASE | re.ASCII,
)
_VERSION = re.compile(r"v[0-9]{1,4}", re.IGNORECASE | re.ASCII)
_SIZE = re.compile(r"[0-9]{1,5}x[0-9]{1,5}|[0-9]{2,5}X[0-9]{2,5}", re.ASCII)  # 2x100, 1920X1080

_NO, _IF_NAMED, _ID = 0, 1, 2  # a token's shape: not an id / an id after a kind word / an id


@dataclass(frozen=True, slots=True)
class IdToken:
    """An identifier found in text: ``text[start:end]`` (``#`` included), its key and typed kind."""

    start: int
    end: int
    key: str
    kind: str
    weak: bool = False  # a shape that counts only after a kind word, found without one


def identifier_key(value: str) -> str:
    """The exact-match key of an identifier as written: ``"**#W1588712**."`` -> ``"w1588712"``.

    Case-folded; surrounding markdown, quotes, brackets, ``#`` and punctuation stripped.
    """
    return value.strip().strip("*_`\"'“”‘’()[]{}<>.,;:!?").lstrip("#").strip("_-").casefold()


def split_handle(value: str) -> list[str]:
    """The name words of an account handle: ``firstname_lastname_6699`` -> ``["firstname",
    "lastname"]``; ``[]`` unless ``value`` is letters parts (then optional digits) joined by
    ``_``, ``-`` or ``.``."""
    parts = [p for p in re.split(r"[-_.]+", identifier_key(value)) if p]
    while parts and parts[-1].isdigit():
        parts.pop()
    if len(parts) < 2 or not all(p.isascii() and p.isalpha() for p in parts):
        return []
    return parts


def _is_date(runs: list[str]) -> bool:
    """15jan2024, May2024, Q3-2024, FY25: month or quarter words with days, years, quarters."""
    return len(runs) <= 3 and all(
        r in _DATE_WORDS if r.isalpha() else len(r) <= 2 or (len(r) == 4 and r[:2] in ("19", "20"))
        for r in runs
    )


def _shape(tok: str, hashed: bool) -> tuple[int, str]:
    """How much ``tok`` looks like an identifier, and the kind its shape alone says."""
    n = len(tok)
    if n < 3 or n > MAX_ID_CHARS:
        return _NO, IDENTIFIER
    parts = [p for p in _SEPS.split(tok) if p] if ("-" in tok or "_" in tok) else [tok]
    if not _HAS_DIGIT.search(tok):
        if n >= 5 and tok.isalpha() and tok.isupper():
            return _IF_NAMED, IDENTIFIER  # QXKZTB or #QXKZTB, but also URGENT
        if hashed:
            return _NO, IDENTIFIER  # a hashtag
        if "_" in tok and len(parts) >= 2:
            return _IF_NAMED, "account"  # jane_doe: a handle, but so is any snake_case word
        return _NO, IDENTIFIER
    digits = sum(map(tok.count, "0123456789"))  # ten C calls: cheaper than a loop over chars
    letters = n - digits - tok.count("-") - tok.count("_")
    if letters == 0:
        if hashed:
            return _NO, IDENTIFIER  # "#4521" is the order rule's; "#1" is nothing
        if len(parts) > 1:  # dates and phones are dash-joined digits too
            return (_ID if digits >= 12 else _NO), IDENTIFIER
        return (_ID if digits >= 9 else _IF_NAMED if digits >= 5 else _NO), IDENTIFIER
    lowered = tok.casefold()
    runs = _RUNS.findall(lowered)
    prefix = "1z" if lowered.startswith("1z") else runs[0]
    kind = _PREFIX_KIND.get(prefix, IDENTIFIER) if len(runs) > 1 else IDENTIFIER
    # A leading '#' says "an id" louder than any of these shapes.
    if not hashed and (_VERSION.fullmatch(tok) or _SIZE.fullmatch(tok) or ("_" not in tok and _is_date(runs))):
        return _NO, kind
    if not hashed and "_" not in tok and digits <= 9 and (
        (runs[0] in _CURRENCIES and all(r.isdigit() for r in runs[1:]))
        or (runs[-1] in _CURRENCIES and all(r.isdigit() for r in runs[:-1]))
    ):
        return _NO, kind  # USD100, USD1.10, 100eur
    if len(parts) > 1:
        if parts[0].isdigit() and all(p.isalpha() and not p.isupper() for p in parts[1:]):
            return _NO, kind  # 30-day, 365-Day-returns, 2-factor (but 000/AA is a reference)
        if "_" in tok and all(p.isalpha() for p in parts[:-1]) and parts[-1].isdigit():
            # firstname_lastname_6699 / jdoe_1984: a handle; snake_case_2 is not.
            handle = len(parts) >= 3 or digits >= 3
            return (_ID if handle else _IF_NAMED), "account"
        if parts[0].isalpha() and parts[0].isupper() and len(parts[0]) >= 2 and digits >= 3:
            return _ID, kind  # RMA-12345, SKU-4431-B
        if len(parts) == 2 and parts[0].isalpha() and parts[1].isdigit() and len(parts[1]) <= 4:
            return _IF_NAMED, kind  # covid-19, mid-2024, page-12
    if _UNIT.fullmatch(tok):
        return _NO, kind  # 10am, 16GB, 3rd, 12months, #1st
    if hashed:
        return _ID, kind
    caps = _LOWER.search(tok) is None
    if digits >= 5 or (caps and n >= 6) or (caps and n >= 5 and digits >= 3):
        return _ID, kind
    return _IF_NAMED, kind


def _named_kind(text: str, start: int) -> str | None:
    """The typed kind that the words right before ``start`` give, if any."""
    back = text[max(0, start - _LOOKBACK) : start][::-1]
    pos = 0
    for _ in range(4):
        m = _BACK.match(back, pos)
        if m is None:
            return None
        word = m.group(1)[::-1].casefold()
        if word not in _FILLERS:
            return _WORD_KIND.get(word) or (_WORD_KIND.get(word[:-1]) if word.endswith("s") else None)
        pos = m.end()
    return None


def _dotted_start(seg: str) -> int | None:
    """Where the id starts in a ``.``-joined segment, or None when the dots make it a file
    name, domain, decimal, version or IP (``report.pdf``, ``19.99``, ``v1.2.3``)."""
    if "." not in seg:
        return 0
    lead = len(seg) - len(seg.lstrip("_-"))  # _V10.0_: markdown around it
    parts = seg.strip("_-").split(".")
    if not all(parts) or parts[-1].isalpha() or all(p.isdigit() for p in parts):
        return None
    if _VERSIONISH.fullmatch(parts[0]) and parts[1][:1].isdigit():
        return None  # 1.2.3-beta4, 3.5mm, 2.5GB
    if len(parts) == 2 and parts[0].casefold() in _FILLERS:
        return lead + len(parts[0]) + 1  # No.12345
    return 0


def _pieces(body: str, at: int) -> Iterator[tuple[int, int]]:
    """The spans of ``body`` (found at ``at``) that may each be one id.

    ``/`` joins one reference when every part has a digit or is upper-case and some part
    has letters (``INV/2023-24/0012``, ``12/AB34``); otherwise it separates path parts
    (``orders/W1588712``) and dates (``12/05/2024``), each looked at alone.
    """
    if "/" not in body and "." not in body:
        yield at, at + len(body)
        return
    segs = body.split("/")
    if len(segs) > 1 and all(
        "." not in p and len(p) <= 16 and (_HAS_DIGIT.search(p) or p.isupper()) for p in segs
    ) and any(not p.isdigit() for p in segs):
        yield at, at + len(body)
        return
    pos = at
    for seg in segs:
        skip = _dotted_start(seg) if seg else None
        if skip is not None and skip < len(seg):
            yield pos + skip, pos + len(seg)
        pos += len(seg) + 1


def find_identifiers(text: str, *, weak: bool = False) -> Iterator[IdToken]:
    """Every identifier-shaped token of ``text``, in order, with its key and typed kind.

    ``weak`` also yields the weaker shapes no kind word names (``QXKZTB`` alone, ``jane_doe``,
    ``48213``): a query looks them up, and only an identifier some memory named resolves.
    """
    for m in _TOKEN.finditer(text):
        for start, end in _pieces(m.group(2), m.start(2)):
            body = text[start:end]
            stripped = body.strip("_-")  # _W1588712_ (markdown italics), trailing dash
            if not stripped:
                continue
            start += len(body) - len(body.lstrip("_-"))
            end -= len(body) - len(body.rstrip("_-"))
            hashed = bool(m.group(1)) and start == m.start(2)
            # . and / join parts like - does (x12y.3456, 12/AB34); the key keeps them.
            shape, kind = _shape(stripped.replace(".", "-").replace("/", "-"), hashed)
            if shape == _NO:
                continue
            first = m.start() if hashed else start
            named = _named_kind(text, first)
            unnamed = named is None and shape == _IF_NAMED
            if unnamed and not weak:
                continue
            yield IdToken(first, end, stripped.casefold(), named or kind, unnamed)
