"""Labelled recall queries over a generated history.

What the caller knows is what a real bot or agent would know, no more:

- ``customer_history``, ``preference``, ``temporal`` - an agent types the customer's name
  (a bot that knows who it is talking to can do the same); no filter. The memories are
  tagged ``customer:<id>`` (or stored with ``customerId``, or inside a session started for
  that customer) and their text usually does not contain the name.
- ``identifier`` - an order number, ticket id, e-mail, phone or tracking number; no filter.
- ``graph_hop`` - a ticket id, asking about the rest of its order or its customer.
- ``paraphrase`` - a bot in a chat with a known customer (``filter.customerId``) asks about
  an earlier event in other words ("did the package come broken?").
- ``within_session`` - a bot in a live chat (``filter.sessionId``) asks about something
  said minutes ago, in other words.
- ``temporal`` - "what did we promise Jane Doe last week?": CaseGraph does not parse dates
  out of query text; the caller turns the phrase into ``since``/``until`` the way a bot
  would (e.g. with dateparser), relative to the benchmark's fixed NOW. The phrase stays
  in the query text too.

Grades: 2 = answers the question, 1 = relevant context, absent = not relevant. Memories a
later one made out of date (ground truth) are never relevant: by default a bot should see
the current state. Session summaries are made by CaseGraph itself, so their grades are
rules resolved after ingestion (``SummaryRule``): a summary of the listed sessions counts,
if ``requires`` is set only when it contains one of those memories' sentences.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from benchmarks import chat_vocabulary as CV
from benchmarks import vocabulary as V
from benchmarks.events import EVENTS
from benchmarks.histories import NOW, Customer, GenMemory, History

KINDS = (
    "customer_history", "identifier", "paraphrase", "temporal", "graph_hop", "preference", "within_session",
)
# Events that answer the same paraphrased question as the key event.
_FAMILY = {"second_damage": "damage_report"}


@dataclass(frozen=True, slots=True)
class SummaryRule:
    sessions: frozenset[str]
    grade: int
    requires: tuple[str, ...] = ()  # memory keys; empty = any summary of those sessions


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    kind: str
    agent: str
    text: str
    labels: dict[str, int]  # generator memory key -> grade
    customer_filter: str | None = None
    session_filter: str | None = None  # generator session key
    since: datetime | None = None
    until: datetime | None = None
    summaries: tuple[SummaryRule, ...] = ()
    subtype: str = ""
    # Customer-history queries: whose history (precision@10 and session recall@10 count it).
    customer: str | None = None
    # "what happened with <id>": the outcome memory, and the session whose summary also counts.
    outcomes: tuple[str, ...] = ()
    outcome_session: str | None = None


@dataclass
class _Builder:
    history: History
    rng: random.Random
    out: list[Query] = field(default_factory=list)

    def current(self, memories: Iterable[GenMemory]) -> list[GenMemory]:
        return [m for m in memories if not m.outdated]

    def customer(self, m: GenMemory) -> Customer:
        return self.history.customers[m.customer]

    def add(self, kind: str, agent: str, text: str, labels: dict[str, int], **kw) -> None:
        if any(g > 0 for g in labels.values()):
            self.out.append(Query(f"{kind}-{len(self.out):04d}", kind, agent, text, labels, **kw))

    @staticmethod
    def question(template: str, m: GenMemory, c: Customer, rng: random.Random) -> str:
        slots = {
            **m.slots, "Full": c.full, "subj_short": c.pronoun, "obj": c.obj, "pos": c.pos,
            "q_broken": rng.choice(V.Q_BROKEN), "q_money": rng.choice(V.Q_MONEY),
        }
        text = template.format_map(slots)
        return text[0].upper() + text[1:]


def _linked(m: GenMemory, order: str | None = None, ticket: str | None = None) -> bool:
    """Does the stored memory itself name the order/ticket (tag or text)?"""
    if order is not None:
        return f"order:{order}" in m.tags or order in m.content
    return f"ticket:{ticket}" in m.tags or (ticket or "~") in m.content


def _sessions(memories: Iterable[GenMemory]) -> frozenset[str]:
    return frozenset(m.session for m in memories)


def _pick(rng: random.Random, items: list, n: int) -> list:
    return rng.sample(items, k=min(n, len(items)))


# -- kinds ---------------------------------------------------------------------------------
def customer_history(b: _Builder, n: int) -> None:
    customers = sorted(b.history.customers.values(), key=lambda c: c.id)
    eligible = [c for c in customers if len(b.current(b.history.of_customer(c.id))) >= 4]
    templates = (
        "{Full} previous interactions", "What do we know about {Full}?", "history with {Full}",
        "{Full} past contacts", "has {Full} contacted us before?", "summary of {Full}'s conversations",
        "{full} history",
    )
    for c in _pick(b.rng, eligible, n):
        mine = b.current(b.history.of_customer(c.id))
        labels = {m.key: 2 if m.importance >= 0.6 else 1 for m in mine}
        text = b.rng.choice(templates).format(Full=c.full, full=c.full.lower())
        b.add("customer_history", c.agent, text, labels, summaries=(SummaryRule(_sessions(mine), 2),), customer=c.id)


def identifier(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    cases = sorted(h.cases.values(), key=lambda c: c.key)
    by_case: dict[str, list[GenMemory]] = {}
    for m in h.memories.values():
        if m.case:
            by_case.setdefault(m.case, []).append(m)
    plan = ["order"] * 4 + ["ticket"] * 3 + ["email"] * 1 + ["phone"] * 1 + ["tracking"] * 1
    mentions = {kind: [m for m in h.memories.values() if kind in m.mentions] for kind in ("email", "phone", "tracking")}
    used: set[str] = set()
    for i in range(n * 3):
        if len([q for q in b.out if q.kind == "identifier"]) >= n:
            break
        kind = plan[i % len(plan)]
        if kind == "order":
            case = rng.choice(cases)
            mine = b.current(by_case.get(case.key, []))
            if case.order in used or not mine:
                continue
            used.add(case.order)
            labels = {m.key: 2 if _linked(m, order=case.order) else 1 for m in mine}
            text = rng.choice(("order {o}", "#{o}", "what's the status of order {o}?", "ORD-{o}",
                               "any news on order number {o}?", "order #{o} history")).format(o=case.order)
            b.add("identifier", case.agent, text, labels, summaries=(SummaryRule(_sessions(mine), 1),), subtype="order")
        elif kind == "ticket":
            case = rng.choice([c for c in cases if c.tickets])
            t = rng.choice(case.tickets)
            mine = b.current(m for m in by_case.get(case.key, []) if m.ticket == t)
            if t in used or not mine:
                continue
            used.add(t)
            labels = {m.key: 2 if _linked(m, ticket=t) else 1 for m in mine}
            text = rng.choice(("{t}", "ticket {t}", "case {d}", "update on {t}?", "what happened in ticket {t}?")).format(
                t=t, d=t.removeprefix("T-"))
            b.add("identifier", case.agent, text, labels, summaries=(SummaryRule(_sessions(mine), 1),), subtype="ticket")
        else:
            m = rng.choice(mentions[kind])
            value = m.mentions[kind]
            if value in used:
                continue
            used.add(value)
            same = [x for x in h.memories.values() if x.mentions.get(kind) == value]
            if kind == "tracking":
                context = b.current(by_case.get(m.case or "", []))
            else:
                context = b.current(h.of_customer(m.customer))
            labels = {x.key: 1 for x in context}
            labels.update({x.key: 2 for x in b.current(same)})
            templates = {
                "email": ("{v}", "customer with e-mail {v}", "who is {v}?", "history for {v}"),
                "phone": ("{v}", "caller {v}", "who rang from {v}?"),
                "tracking": ("tracking {v}", "where is parcel {v}?", "tracking number {v}"),
            }[kind]
            text = rng.choice(templates).format(v=value)
            b.add("identifier", m.agent, text, labels, summaries=(SummaryRule(_sessions(context), 1),), subtype=kind)


def paraphrase(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    targets = [m for m in h.memories.values() if EVENTS.get(m.event) and EVENTS[m.event].questions and not m.outdated]
    for m in _pick(rng, targets, n):
        c = b.customer(m)
        family = _FAMILY.get(m.event, m.event)
        answers = [
            x for x in b.current(h.of_customer(c.id))
            if _FAMILY.get(x.event, x.event) == family and x.product == m.product
        ]
        text = b.question(rng.choice(EVENTS[m.event].questions), m, c, rng)
        b.add("paraphrase", c.agent, text, {x.key: 2 for x in answers}, customer_filter=c.id,
              summaries=(SummaryRule(_sessions(answers), 1, tuple(x.key for x in answers)),), subtype=family)


def window_for(t: datetime, rng: random.Random) -> tuple[str, datetime, datetime]:
    """A phrase a caller could use for a time that includes ``t``, and its [since, until]."""
    day = timedelta(days=1)
    start_today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    options = []
    if start_today - day <= t < start_today:
        options.append(("yesterday", start_today - day, start_today - timedelta(seconds=1)))
    if t >= start_today - 7 * day:
        options.append(("in the past week", start_today - 7 * day, NOW))
    month_start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start + 32 * day).replace(day=1)
    if month_start.month == NOW.month and month_start.year == NOW.year:
        options.append(("this month", month_start, NOW))
    elif (next_month.month, next_month.year) == (NOW.month, NOW.year):
        options.append(("last month", month_start, next_month - timedelta(seconds=1)))
    else:
        options.append((f"in {month_start.strftime('%B')}", month_start, next_month - timedelta(seconds=1)))
    return options[0] if rng.random() < 0.7 else rng.choice(options)


def temporal(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    promises = [m for m in h.memories.values() if m.promise]
    sessions = [s for s in h.sessions.values() if s.ended_at is not None and s.memory_keys]
    for i in range(n):
        if i % 5 < 3 and promises:
            m = rng.choice(promises)
            c = b.customer(m)
            phrase, since, until = window_for(m.created_at, rng)
            answers = [x for x in h.of_customer(c.id) if x.promise and since <= x.created_at <= until]
            text = rng.choice(("What did we promise {Full} {p}?", "any promises made to {Full} {p}?",
                               "{Full}: what did we commit to {p}?")).format(Full=c.full, p=phrase)
            b.add("temporal", c.agent, text, {x.key: 2 for x in answers}, since=since, until=until,
                  summaries=(SummaryRule(_sessions(answers), 1, tuple(x.key for x in answers)),), subtype="promise")
        else:
            s = rng.choice(sessions)
            c = h.customers[s.customer]
            first = h.memories[s.memory_keys[0]]
            phrase, since, until = window_for(first.created_at, rng)
            inside = [x for x in b.current(h.of_customer(c.id)) if since <= x.created_at <= until]
            text = rng.choice(("What happened with {Full} {p}?", "{Full} contacts {p}",
                               "what did {Full} get in touch about {p}?")).format(Full=c.full, p=phrase)
            b.add("temporal", c.agent, text, {x.key: 2 if x.importance >= 0.6 else 1 for x in inside},
                  since=since, until=until, summaries=(SummaryRule(_sessions(inside), 2),), subtype="window")


def graph_hop(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    by_case: dict[str, list[GenMemory]] = {}
    for m in h.memories.values():
        if m.case:
            by_case.setdefault(m.case, []).append(m)
    multi = [c for c in sorted(h.cases.values(), key=lambda c: c.key) if len(c.tickets) >= 2]
    single = [c for c in sorted(h.cases.values(), key=lambda c: c.key) if c.tickets]
    for i in range(n):
        if i % 5 < 3 and multi:
            case = rng.choice(multi)
            t = rng.choice(case.tickets)
            rest = [m for m in b.current(by_case[case.key]) if m.ticket != t]
            labels = {m.key: 2 if m.ticket else 1 for m in rest}
            text = rng.choice(("other tickets about the same order as {t}", "what else do we have on the order behind {t}?",
                               "earlier or later problems with the order from ticket {t}")).format(t=t)
            b.add("graph_hop", case.agent, text, labels, summaries=(SummaryRule(_sessions(rest), 1),), subtype="order")
        else:
            case = rng.choice(single)
            t = rng.choice(case.tickets)
            rest = [m for m in b.current(h.of_customer(case.customer)) if m.ticket != t]
            labels = {m.key: 2 if m.ticket else 1 for m in rest}
            text = rng.choice(("what else has the customer on {t} contacted us about?",
                               "other issues from the customer behind {t}")).format(t=t)
            ticket_sessions = {m.session for m in h.memories.values() if m.ticket == t}
            b.add("graph_hop", case.agent, text, labels,
                  summaries=(SummaryRule(_sessions(rest) - ticket_sessions, 1),), subtype="customer")


def preference(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    prefs = [m for m in h.memories.values() if m.pref_topic and not m.outdated and not m.duplicate_of]
    for m in _pick(rng, prefs, n):
        c = b.customer(m)
        answers = [x for x in b.current(h.of_customer(c.id)) if x.pref_topic == m.pref_topic]
        _, questions = V.PREFERENCES[m.pref_topic]
        text = b.question(rng.choice(questions), m, c, rng)
        b.add("preference", c.agent, text, {x.key: 2 for x in answers},
              summaries=(SummaryRule(_sessions(answers), 1, tuple(x.key for x in answers)),), subtype=m.pref_topic)


def within_session(b: _Builder, n: int) -> None:
    h, rng = b.history, b.rng
    questions = {slot: qs for slot, _texts, qs in V.SESSION_FACTS}
    facts = [m for m in h.memories.values() if m.fact_slot]
    for m in _pick(rng, facts, n):
        c = b.customer(m)
        text = b.question(rng.choice(questions[m.fact_slot]), m, c, rng)
        b.add("within_session", c.agent, text, {m.key: 2}, session_filter=m.session, subtype=m.fact_slot)


BUILDERS: dict[str, Callable[[_Builder, int], None]] = {
    "customer_history": customer_history, "identifier": identifier, "paraphrase": paraphrase,
    "temporal": temporal, "graph_hop": graph_hop, "preference": preference, "within_session": within_session,
}


def build_queries(history: History, per_kind: int, seed: int) -> list[Query]:
    """``per_kind`` labelled queries of every kind (fewer only if the history runs out)."""
    b = _Builder(history, random.Random(seed * 7919 + 1))
    for kind in KINDS:
        BUILDERS[kind](b, per_kind)
    return b.out


# -- the chat worlds (worlds.py) ---------------------------------------------------------
CHAT_KINDS = ("history_name", "history_handle", "outcome")


def build_chat_queries(history: History, per_kind: int, seed: int) -> list[Query]:
    """Queries a support agent asks of a chat world, graded like the held-out set:

    - ``history_name``: "<Full Name> previous interactions" - every memory of the customer's
      chats is relevant (grade 1), with their session summaries; asked only of customers
      whose chats say their full name or whose handle is made of it (else nothing could
      tell who they are);
    - ``history_handle``: the same with the customer's handle or e-mail;
    - ``outcome``: "what happened with <id>?" - the agent's last message of the latest chat
      that names the id is the answer (grade 2; so is that session's summary), the other
      messages naming it are context (grade 1).
    """
    b = _Builder(history, random.Random(seed * 7919 + 2))
    rng = b.rng
    customers = sorted(history.customers.values(), key=lambda c: c.id)
    by_customer: dict[str, list[GenMemory]] = {}
    for m in history.memories.values():
        by_customer.setdefault(m.customer, []).append(m)
    def named(c: Customer) -> bool:
        """Can the chats answer "<Full Name> ...": do they say the name (or a handle made of it)?"""
        said = " ".join(m.content.lower() for m in by_customer.get(c.id, []))
        return c.full.lower() in said or f"{c.first}_{c.last}".lower() in said or (
            c.id == c.handle and c.handle.startswith(f"{c.first}_{c.last}_".lower()))

    for kind in ("history_name", "history_handle"):
        eligible = [c for c in customers if named(c)] if kind == "history_name" else customers
        for c in _pick(rng, eligible, per_kind):
            mine = by_customer.get(c.id, [])
            if kind == "history_name":
                text = rng.choice(CV.HISTORY_NAME).format(Full=c.full)
            else:
                text = rng.choice(CV.HISTORY_HANDLE).format(h=c.handle if c.id == c.handle else c.email)
            b.add(kind, c.agent, text, {m.key: 1 for m in mine}, summaries=(SummaryRule(_sessions(mine), 1),),
                  customer=c.id, subtype=kind)
    threads: dict[str, list[GenMemory]] = {}
    for m in history.memories.values():
        if m.thread and m.thread in m.content:
            threads.setdefault(m.thread, []).append(m)
    for ident in _pick(rng, sorted(threads), per_kind):
        naming = threads[ident]
        latest = max(naming, key=lambda m: m.created_at).session
        last_agent = [history.memories[k] for k in history.sessions[latest].memory_keys
                      if history.memories[k].role == "agent"][-1]
        labels = {m.key: 1 for m in naming} | {last_agent.key: 2}
        first = naming[0]
        noun = first.slots.get("noun", "order")
        text = rng.choice(CV.OUTCOME.get(noun, CV.OUTCOME["order"])).format(id=ident)
        b.add("outcome", first.agent, text, labels, summaries=(SummaryRule(frozenset({latest}), 2),),
              outcomes=(last_agent.key,), outcome_session=latest, subtype=noun)
    return b.out
