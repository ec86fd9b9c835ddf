"""Customer aliases: what a customer is known by, read from what its memories say.

A bot often learns who it is talking to a few messages into a chat; by then the customer
has said their name, e-mail or account handle, and later queries name the customer by any
of them ("Jane Doe previous interactions", "jane@example.com history",
"firstname_lastname_6699"). Each such thing is an ``Alias`` of the customer:

- ``name``: said in the customer's own words ("my name is Jane Doe", "this is Jane",
  "it's Jane Doe", "I'm Jane Doe"), a PERSON the statistical model finds in a ``user:``
  message, the words of an account handle (``jane_doe_6699`` -> "jane doe") or of the
  customer's id (``cust-jane-doe`` -> "jane doe");
- ``email``, ``phone``: any the customer's memories mention;
- ``handle``: an account handle (``firstname_lastname_6699``) its memories mention.

Keys are normalised (names: ASCII-folded lower-case words joined by one space; e-mails
lower-cased; phones digits with a leading "+"; handles lower-cased), so the query side
(``query_mentions``) finds them with exact lookups. Pure functions: the graph keeps the
aliases (app/storage/embedded/aliases.py), recall resolves them (app/domain/recall.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .keys import is_stop_word
from .rules import find_rule_entities

KINDS = ("name", "initial", "email", "phone", "handle")
# How a reason names each kind ("name 'Jane Doe'", "e-mail 'jane@example.com'").
KIND_WORDS = {"name": "name", "initial": "name", "email": "e-mail", "phone": "phone", "handle": "account"}
# An e-mail or id made of an initial and a surname (``aclarke68``): "a clarke".
_INITIAL_SURNAME = re.compile(r"([a-z])([a-z]{3,})[0-9]*")
SOURCE_ID = "id"  # the source of an alias learned from the customer's id

# Who speaks in a message stored as "user: ..." / "assistant: ...".
_SPEAKER = re.compile(r"^\s*(?P<role>[A-Za-z]{2,12})\s*:\s*")
_CUSTOMER_ROLES = {"user", "customer", "client", "caller", "human", "visitor"}
_AGENT_ROLES = {"assistant", "agent", "bot", "support", "system", "ai", "operator", "rep"}

_WORD = r"[^\W\d_][^\W\d_'\-]*"
# "my name is ...", "call me ..." name someone whatever their case; "this is", "it's",
# "I'm", "I am" only before Capitalised Words ("I'm sorry", "it's broken" are not names).
_STRONG = re.compile(
    rf"\b(?:my\s+name\s+is|my\s+name's|name's|name\s+is|call\s+me)\s+(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,3}})",
    re.IGNORECASE,
)
_WEAK = re.compile(
    rf"\b(?:this\s+is|it's|it\s+is|i'm|i\s+am|im)\s+(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,3}})",
    re.IGNORECASE,
)
# "Jane Doe here", "Jane Doe speaking": Capitalised words that open a message.
_SIGNED = re.compile(rf"(?:^|[.!?,]\s+|\b(?:hi|hello|hey)[,!]?\s+)(?P<name>{_WORD}(?:[ \t]+{_WORD}){{0,2}})[ \t]+(?:here|speaking)\b")
# Capitalised words that follow "I'm"/"it's" and are not names.
_NOT_NAMES = frozenset(
    """
    monday tuesday wednesday thursday friday saturday sunday january february march april june
    july august september october november december today tomorrow yesterday hi hello hey
    thanks thank sorry yes no ok okay sure fine good great glad happy here back calling writing
    looking trying still just really very so not urgent important frustrated annoyed confused
    interested available ready unable able new customer user client member agent support hmm
    um uh oh ah well yeah yep nope right alright cool wow also again actually please dear
    """.split()
)
# A PERSON right after these is more often a place the model mistook ("going to Norwich").
_PLACE_WORDS = frozenset("to in at from near into towards via around of for".split())
# A handle: letters in two or more parts and a number, joined by "_" (firstname_lastname_6699).
_HANDLE = re.compile(r"(?<![\w@.])(?P<h>[A-Za-z]{2,}(?:_[A-Za-z]{2,}){1,3}_[0-9]{2,})(?![\w@])")
# Words of a customer id that say what it is, not who.
_ID_PREFIXES = frozenset("c cu cus cust customer customers u usr user users client id acct account member mbr".split())


@dataclass(frozen=True, slots=True)
class Alias:
    kind: str
    key: str
    value: str

    @property
    def node_key(self) -> str:
        """The per-agent node key (``node_uid(agent, alias.node_key)``)."""
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, slots=True)
class AliasMention:
    """A place in a query that may name an alias."""

    kind: str
    key: str
    start: int
    end: int

    @property
    def node_key(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, slots=True)
class AliasMatch:
    """A query mention that names the alias of one or more customers."""

    kind: str
    key: str
    value: str
    customers: tuple[str, ...]
    start: int
    end: int
    # Conversations whose customer was never given that said it (008_session_aliases).
    sessions: tuple[str, ...] = ()

    def reason(self) -> str:
        """What recall's ``why`` says of it."""
        said = f"{KIND_WORDS.get(self.kind, self.kind)} '{self.value}'"
        if len(self.customers) > 1:
            return f"{said} matches {len(self.customers)} customers"
        return said


# -- normalising ---------------------------------------------------------------------
def words_of(text: str) -> list[str]:
    """ASCII-folded lower-case words ("José O'Neil" -> ["jose", "o", "neil"])."""
    folded = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", folded)


def name_key(text: str) -> str:
    return " ".join(words_of(text))


def _title(words: Sequence[str]) -> str:
    return " ".join(w.capitalize() for w in words)


def _name(value: str) -> Alias | None:
    """A name alias for ``value``, or None when it is no plausible name."""
    words = words_of(value)
    if not 1 <= len(words) <= 4 or len(words[0]) < 2 or not all(w.isalpha() for w in words):
        return None
    if is_stop_word(words[0]) or words[0] in _NOT_NAMES or all(map(is_stop_word, words)):
        return None
    return Alias("name", " ".join(words), " ".join(value.split()))


def _cut_name(raw: str, strong: bool) -> str | None:
    """The name at the start of ``raw`` (what follows "my name is"...), or None."""
    kept: list[str] = []
    for word in raw.split():
        low = word.lower()
        if is_stop_word(low) or low in _NOT_NAMES:
            break
        if word.endswith("-") or (len(word) > 1 and word.isupper()):
            break  # the letters of an id ("it's RMA-311975") or an acronym, not a name
        if not strong and not word[0].isupper():
            break
        kept.append(word)
    return " ".join(kept) if kept else None


def _person(text: str, value: str) -> Alias | None:
    """A PERSON the statistical model found, when it looks like a full name: two or more
    Capitalised words, not right after "to"/"in"/"from"... (the small model calls many
    places people)."""
    words = value.split()
    if len(words) < 2 or not all(w[0].isupper() for w in words):
        return None
    at = text.find(value)
    before = text[:at].split()[-1:] if at > 0 else []
    if before and before[0].lower() in _PLACE_WORDS:
        return None
    return _name(value)


def email_aliases(value: str, key: str) -> list[Alias]:
    """An e-mail, and the name its local part spells: ``jane.doe@``, ``jane.doe7301@`` ->
    "jane doe"; ``aclarke68@`` -> the initial and surname "a clarke"."""
    return [Alias("email", key, value), *_spelled(key.split("@", 1)[0])]


def _spelled(local: str) -> list[Alias]:
    """The name an e-mail's local part or an id spells, if any."""
    parts = re.split(r"[._-]", local.lower())
    parts[-1] = parts[-1].rstrip("0123456789")
    if 2 <= len(parts) <= 3 and all(p.isalpha() and len(p) >= 2 for p in parts):
        name = _name(_title(parts))
        return [name] if name is not None else []
    m = _INITIAL_SURNAME.fullmatch(local.lower())
    if m is not None and not is_stop_word(m.group(2)):
        return [Alias("initial", f"{m.group(1)} {m.group(2)}", f"{m.group(1).upper()}. {m.group(2).capitalize()}")]
    return []


def handle_aliases(handle: str) -> list[Alias]:
    """A handle and the name its words spell (``jane_doe_6699`` -> "jane doe")."""
    key = handle.lower()
    out = [Alias("handle", key, handle)]
    parts = [p for p in key.split("_") if p.isalpha()]
    name = _name(_title(parts)) if 1 <= len(parts) <= 3 else None
    if name is not None:
        out.append(name)
    return out


# -- learning ------------------------------------------------------------------------
def speaker(content: str) -> str | None:
    """"customer", "agent", or None when the message does not say who speaks."""
    m = _SPEAKER.match(content)
    if m is None:
        return None
    role = m.group("role").lower()
    return "customer" if role in _CUSTOMER_ROLES else "agent" if role in _AGENT_ROLES else None


def text_aliases(content: str, entities: Iterable[tuple[str, str, str]]) -> list[Alias]:
    """The aliases a memory of a customer reveals: ``entities`` are its extracted
    (kind, value, key) triples. Names only from the customer's own words (a message not
    marked as the agent's); PERSON entities only from a message marked as the customer's."""
    who = speaker(content)
    text = content.replace("\u2019", "'")
    prefix = _SPEAKER.match(text) if who else None
    body = text[prefix.end():] if prefix else text
    found: list[Alias] = []
    if who != "agent":
        for pattern, strong in ((_STRONG, True), (_WEAK, False), (_SIGNED, False)):
            for m in pattern.finditer(body):
                cut = _cut_name(m.group("name"), strong)
                alias = _name(cut) if cut else None
                if alias is not None:
                    found.append(alias)
    for kind, value, key in entities:
        if kind == "person" and who == "customer":
            alias = _person(text, value)
        elif kind == "email":
            found.extend(email_aliases(value, key))
            continue
        elif kind == "phone":
            alias = Alias(kind, key, value)
        elif kind in ("account", "handle") and _HANDLE.fullmatch(value.strip()):
            found.extend(handle_aliases(value.strip()))
            continue
        else:
            continue
        if alias is not None:
            found.append(alias)
    for m in _HANDLE.finditer(text):
        found.extend(handle_aliases(m.group("h")))
    return list({(a.kind, a.key): a for a in reversed(found)}.values())[::-1]  # first said wins


def id_aliases(customer_id: str) -> list[Alias]:
    """What a customer id says of who it is: an e-mail, a handle, or name words
    (``cust-jane-doe`` -> "jane doe"; ``cust-1177`` says nothing)."""
    found: list[Alias] = []
    if _HANDLE.fullmatch(customer_id):
        return handle_aliases(customer_id)
    for e in find_rule_entities(customer_id):
        if e.kind == "email" and e.start == 0 and e.end == len(customer_id):
            return email_aliases(e.value, e.key)
    named = [w for w in re.split(r"[-_.+@]", customer_id) if w.isalpha() and w not in _ID_PREFIXES]
    alias = _name(_title(named)) if 1 <= len(named) <= 3 else None
    if alias is not None:
        found.append(alias)
    elif re.fullmatch(r"[a-z]+[0-9]+", customer_id):  # awalker35
        found.extend(_spelled(customer_id))
    return found


# -- the query side ------------------------------------------------------------------
_QUERY_WORD = re.compile(r"[^\W\d_]+")
_NAME_GAP = re.compile(r"[ \t'\-]{1,3}")


def query_mentions(query: str, max_names: int = 40) -> list[AliasMention]:
    """Every place in ``query`` that may name an alias: word n-grams (1-3 words, not all
    stop words; a single word only Capitalised) as names, and the e-mails, phones and
    handles it contains."""
    out: list[AliasMention] = []
    for e in find_rule_entities(query):
        if e.kind in ("email", "phone"):
            out.append(AliasMention(e.kind, e.key, e.start, e.end))
    for m in _HANDLE.finditer(query):
        out.append(AliasMention("handle", m.group("h").lower(), m.start("h"), m.end("h")))
    taken = [(m.start, m.end) for m in out]
    words = list(_QUERY_WORD.finditer(query))
    names: list[AliasMention] = []
    for i in range(len(words)):
        for n in (1, 2, 3):
            gram = words[i : i + n]
            if len(gram) < n:
                break
            # Words of one name sit next to each other (a space or a hyphen apart).
            gaps = (query[a.end() : b.start()] for a, b in zip(gram, gram[1:], strict=False))
            if any(not _NAME_GAP.fullmatch(gap) for gap in gaps):
                break
            if any(s < gram[-1].end() and gram[0].start() < e for s, e in taken):
                break  # inside an e-mail or a handle
            keys = [name_key(w.group()) for w in gram]
            if any(len(k) < 2 for k in keys) or all(map(is_stop_word, keys)):
                continue
            if n == 1 and not gram[0].group()[0].isupper():
                continue  # one lower-case word is a word ("mark as resolved"), not a name
            names.append(AliasMention("name", " ".join(keys), gram[0].start(), gram[-1].end()))
            if n == 2 and all(k.isalpha() for k in keys):  # "Anna Clarke" as "a clarke"
                names.append(AliasMention("initial", f"{keys[0][0]} {keys[1]}", gram[0].start(), gram[-1].end()))
    return out + names[:max_names]


def matches(
    mentions: Sequence[AliasMention],
    found: dict[str, tuple[str, tuple[str, ...]]],
    said: dict[str, tuple[str, tuple[str, ...]]] | None = None,
) -> list[AliasMatch]:
    """The mentions whose alias exists (``found``: node key -> (value, customer ids);
    ``said``: node key -> (value, ids of sessions without a customer that said it)), less
    any lying inside a longer one that matched ("Alex Kim" hides "Alex" and "Kim")."""
    said = said or {}
    hit = []
    for m in mentions:
        value, customers = found.get(m.node_key, ("", ()))
        spoken, sessions = said.get(m.node_key, ("", ()))
        if customers or sessions:
            hit.append(AliasMatch(m.kind, m.key, value or spoken, customers, m.start, m.end, sessions))
    # Longest first; on one span a full name before an initial and surname.
    hit.sort(key=lambda h: (h.start - h.end, h.kind == "initial", h.start))
    kept: list[AliasMatch] = []
    for h in hit:
        if not any(k.start <= h.start and h.end <= k.end for k in kept):
            kept.append(h)
    return sorted(kept, key=lambda h: h.start)
