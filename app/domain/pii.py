"""Redaction of personal data at ingest: before anything is extracted, embedded or written.

On by default: payment-card numbers (13-19 digits, optionally grouped by spaces or
hyphens, that pass the Luhn check) become ``[REDACTED CARD]``. Operators may add regexes
(``CASEGRAPH_PII_PATTERNS``, a JSON list); their matches become ``[REDACTED]``. Digit runs
that fail the Luhn check (order numbers, phone numbers, tracking numbers) stay.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

CARD_MARK = "[REDACTED CARD]"
PATTERN_MARK = "[REDACTED]"
# A run of digit groups joined by single spaces or hyphens, not glued to letters or digits.
_RUN = re.compile(r"(?<![\w-])\d+(?:[ -]\d+)*(?!\w)")
_GROUP = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


class Redactor:
    """Applies the configured redactions to text (and to the strings inside JSON values)."""

    def __init__(self, *, cards: bool = True, patterns: Sequence[str] = ()) -> None:
        self.cards = cards
        self.patterns = [re.compile(p) for p in patterns]

    @classmethod
    def from_settings(cls, settings: Any) -> Redactor:
        enabled = settings.pii_redaction
        return cls(cards=enabled, patterns=settings.pii_patterns if enabled else ())

    @property
    def active(self) -> bool:
        return self.cards or bool(self.patterns)

    def text(self, value: str) -> str:
        # The operator's patterns first: they are specific (an IBAN's digits may hold a
        # Luhn-valid stretch that would otherwise be cut out of the middle).
        for pattern in self.patterns:
            value = pattern.sub(PATTERN_MARK, value)
        if self.cards:
            value = _RUN.sub(_redact_cards, value)
        return value

    def json(self, value: Any) -> Any:
        """The same JSON value with every string (keys too) redacted."""
        if not self.active:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.json(v) for k, v in value.items()}
        return value


def _redact_cards(match: re.Match[str]) -> str:
    """Redact each stretch of whole digit groups that holds 13-19 digits and passes Luhn.

    Trying stretches (longest first) rather than the whole run keeps a card number found
    when it is followed or preceded by other numbers ("4111 1111 1111 1111 12/27").
    """
    run = match.group(0)
    groups = [(g.start(), g.end()) for g in _GROUP.finditer(run)]
    out, cursor, i = [], 0, 0
    while i < len(groups):
        best, digits = None, ""
        # At most 19 digits: a bounded look ahead, linear in the run's length.
        for j in range(i, len(groups)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                best = j
        if best is None:
            i += 1
            continue
        out += [run[cursor : groups[i][0]], CARD_MARK]
        cursor, i = groups[best][1], best + 1
    out.append(run[cursor:])
    return "".join(out)
