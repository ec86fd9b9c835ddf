"""State statements in memory text: "refund pending", "replacement shipped", "ticket resolved".

Supersession (hygiene.py) needs to know when a newer memory about the same order or ticket
changes the state of something an older memory stated. This module reads those statements
with a few conservative rules: a state is only recognised when the text states it
affirmatively ("refund approved"), never when it is negated or doubted ("refund not approved
yet", "has the refund been approved?"). Missing a state only means no supersession; a wrong
state would hide a memory, so precision wins over recall here.

Each state is a label ``"<topic>:<state>"``, e.g. ``"refund:approved"``. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Topics whose state belongs to a ticket rather than to an order: two tickets about one
# order each have their own ticket state.
TICKET_TOPICS = frozenset({"ticket"})

_F = re.IGNORECASE
# "~" in a pattern: any character of the same clause (a decimal point is not a clause end:
# "Refund of £294.49 pending").
_GAP = r"(?:[^.;!?]|\.(?=\d))"
# (topic, state, pattern). Within a topic, the statement that appears LAST in the text wins
# ("refund was pending and is now approved" -> approved).
_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (topic, state, re.compile(pattern.replace("~", _GAP), _F))
    for topic, state, pattern in (
        # -- refunds ---------------------------------------------------------------------
        ("refund", "rejected", r"\brefund\w*\b~{0,40}?\b(?:declined|rejected|denied|refused)\b"
                               r"|\b(?:declined|rejected|denied|refused)\b~{0,25}?\brefund"),
        ("refund", "issued", r"\brefund\w*\b~{0,40}?\b(?:issued|paid(?: out)?|sent|processed|completed|credited)\b"
                             r"|\b(?:issued|paid out|sent|processed|credited)\b~{0,25}?\brefund"
                             r"|\b(?:was|were|been|got|is|are|fully|partially)\s+(?:fully\s+|partially\s+)?refunded\b"
                             r"|\breimbursed\b"),
        ("refund", "approved", r"\brefund\w*\b~{0,40}?\b(?:approved|authori[sz]ed|accepted|granted|signed off)\b"
                               r"|\b(?:approved|authori[sz]ed|granted)\b~{0,25}?\brefund"),
        ("refund", "pending", r"\brefund\w*\b~{0,40}?\b(?:pending|awaiting|in progress|being processed|under review|on hold)\b"
                              r"|\b(?:pending|awaiting)\b~{0,25}?\brefund"),
        ("refund", "requested", r"\b(?:requests?|requested|asked for|asks for|wants|would like|demand(?:s|ed)?)\b"
                                r"~{0,25}?\b(?:a |her |his |their |the )?(?:refund|money back)\b"
                                r"|\brefund (?:was |has been )?requested\b"),
        # -- replacements ----------------------------------------------------------------
        ("replacement", "delivered", r"\breplacement\b~{0,40}?\b(?:arrived|delivered|received)\b"),
        ("replacement", "shipped", r"\breplacement\b~{0,40}?\b(?:shipped|sent|dispatched|posted|on its way)\b"
                                   r"|\b(?:shipped|sent|dispatched)\b~{0,15}?\b(?:a|the) replacement\b"),
        ("replacement", "approved", r"\breplacement\b~{0,40}?\b(?:approved|authori[sz]ed|agreed|confirmed)\b"
                                    r"|\b(?:approved|agreed to|authori[sz]ed)\b~{0,20}?\breplace"),
        ("replacement", "requested", r"\b(?:requests?|requested|asked for|asks for|wants|would like)\b"
                                     r"~{0,20}?\b(?:a )?replacement\b"),
        # -- returns ---------------------------------------------------------------------
        ("return", "received", r"\breturn\w*\b~{0,40}?\b(?:received|arrived|checked in)\b"
                               r"|\b(?:received|checked in)\b~{0,20}?\bthe return"),
        ("return", "label_sent", r"\breturn label\b~{0,30}?\b(?:sent|e-?mailed|issued|generated)\b"
                                 r"|\b(?:sent|e-?mailed|issued)\b~{0,20}?\breturn label\b"),
        ("return", "requested", r"\b(?:wants|would like|asked|asks|requested|requests)\b~{0,10}?\bto return\b"
                                r"|\breturn (?:was |has been )?requested\b"),
        # -- cancellations ---------------------------------------------------------------
        ("cancellation", "confirmed", r"\b(?:order|subscription)\b~{0,30}?\b(?:cancell?ed)\b"
                                      r"|\bcancell?ation\b~{0,20}?\b(?:confirmed|processed|done)\b"),
        ("cancellation", "requested", r"\b(?:wants|would like|asked|asks|requested|requests)\b~{0,10}?\bto cancel\b"
                                      r"|\bcancell?ation (?:was |has been )?requested\b"),
        # -- deliveries ------------------------------------------------------------------
        ("delivery", "lost", r"\b(?:parcel|package|delivery|shipment|order|box)\b~{0,30}?\b(?:lost|declared lost|marked (?:as )?lost)\b"),
        ("delivery", "delivered", r"\b(?:parcel|package|delivery|shipment|order|box)\b~{0,30}?\b(?:was delivered|has been delivered|got delivered|signed for)\b"),
        ("delivery", "delayed", r"\b(?:parcel|package|delivery|shipment|order|box)\b~{0,30}?\b(?:delayed|running late|held up|stuck)\b"),
        ("delivery", "in_transit", r"\b(?:parcel|package|delivery|shipment|order|box)\b~{0,30}?\b(?:in transit|out for delivery|dispatched|shipped)\b"),
        # -- tickets ---------------------------------------------------------------------
        ("ticket", "closed", r"\b(?:ticket|case)\b~{0,30}?\bclosed\b|\bclosed (?:the |this )?(?:ticket|case)\b"),
        ("ticket", "resolved", r"\b(?:ticket|case|issue|problem)\b~{0,30}?\b(?:resolved|fixed|sorted out)\b"
                               r"|\bmarked (?:as )?resolved\b"),
        ("ticket", "reopened", r"\b(?:ticket|case)\b~{0,30}?\breopened\b|\breopened (?:the |this )?(?:ticket|case)\b"),
        ("ticket", "escalated", r"\bescalated\b"),
    )
)

# A statement is doubted, not asserted, when its clause (up to the statement) negates it or
# puts it in the future, or when the clause is a question.
_DOUBT = re.compile(
    r"\b(?:not|never|no longer|yet to|isn't|wasn't|hasn't|haven't|didn't|doesn't|won't|cannot|can't|"
    r"will|should|could|might|going to|expects?|expected|hopes?|if|whether|unless|once|until|"
    r"usually|normally|typically|generally|policy|still waiting|asks? (?:if|whether|when))\b",
    _F,
)
_CLAUSE_END = re.compile(r"[.;!?](?!\d)|\n|\bbut\b|\bhowever\b", _F)


def extract_states(text: str) -> tuple[str, ...]:
    """The state labels ``text`` asserts, one per topic, sorted (``("refund:approved",)``)."""
    latest: dict[str, tuple[int, str]] = {}
    for topic, state, pattern in _RULES:
        for match in pattern.finditer(text):
            if _doubted(text, match.start(), match.end()):
                continue
            position = match.end()
            if topic not in latest or position > latest[topic][0]:
                latest[topic] = (position, state)
    return tuple(sorted(f"{topic}:{state}" for topic, (_, state) in latest.items()))


def _doubted(text: str, start: int, end: int) -> bool:
    """True when the clause holding text[start:end] negates, defers or questions it."""
    clause_start = 0
    for m in _CLAUSE_END.finditer(text, 0, start):
        clause_start = m.end()
    stop = _CLAUSE_END.search(text, end)
    if stop is not None and stop.group(0) == "?":
        return True
    return bool(_DOUBT.search(text, clause_start, end))


def topics(states: Iterable[str]) -> dict[str, str]:
    """``{"refund": "approved"}`` from ``["refund:approved"]``."""
    out: dict[str, str] = {}
    for label in states:
        topic, _, state = label.partition(":")
        if topic and state:
            out[topic] = state
    return out


def supersedes(newer: Iterable[str], older: Iterable[str]) -> bool:
    """True when a memory stating ``newer`` makes one stating ``older`` out of date.

    Every topic of the older memory must be restated by the newer one (otherwise the older
    memory still holds current information) and at least one of them must have changed.
    """
    new, old = topics(newer), topics(older)
    if not old or not set(old) <= set(new):
        return False
    return any(new[t] != old[t] for t in old)
