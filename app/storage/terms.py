"""The terms keyword search finds a memory by: one analyzer for both engines.

``terms`` splits a text so identifiers survive: a token with joiners
(``firstname_lastname_6699``, ``jane.doe@x.com``, ``T-1042``) is kept whole, joined up
(``t1042``) and split into its parts (``firstname``, ``lastname``, ``6699``), with leading
``#``/``*``/quotes and trailing punctuation stripped (``#W1588712`` is ``w1588712``);
digits are kept. A query goes through the same function, so "Firstname Lastname" finds
the handle and the handle finds the names. ``STOP_WORDS`` are then dropped and the rest
stemmed by the engine (tantivy's and RediSearch's English Snowball stemmers).
"""

from __future__ import annotations

import re
import string

# What never joins the parts of an identifier: a token ends at any of these.
_SEPARATORS = re.compile(r"[^\s,;:!?()\[\]{}<>\"`|/\\=]+")
_PARTS = re.compile(r"[^\W_]+")
_EDGES = string.punctuation
# A whole token longer than this (a URL, a pasted blob) is indexed by its parts only.
_MAX_WHOLE = 80
# English function words (the common NLTK list). Tantivy's own list is Lucene's 33 words,
# which keeps "what", "we", "do", "about", "my": in a question they matched any memory
# that says them.
STOP_WORDS = sorted(set("""
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself
yourselves s t d ll m o re ve y don
""".split()))


def terms(text: str) -> list[str]:
    """The terms of ``text`` before stop words and stemming: each token lowercased and
    stripped of edge punctuation; a token with joiners also whole and joined up."""
    out: list[str] = []
    for raw in _SEPARATORS.findall(text.casefold()):
        token = raw.strip(_EDGES)
        if not token:
            continue
        parts = _PARTS.findall(token)
        if len(parts) == 1 and parts[0] == token:
            out.append(token)
            continue
        out.extend(parts)
        if len(parts) > 1 and len(token) <= _MAX_WHOLE:
            out.append(token)
            out.append("".join(parts))
    return out
