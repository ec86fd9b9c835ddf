"""A seeded generator of realistic multi-session support histories, with ground truth.

Three shops (three bots, i.e. three CaseGraph agents) serve a few hundred customers over
twelve months. Customers order things; some orders go wrong (damaged, late or lost,
wrong item, faulty, double-charged, cancelled) and become cases: a ticket, several chats
days apart, state changes (refund pending -> approved, replacement shipped -> delivered),
promises, sometimes a second ticket about the same order. Customers state preferences
(and sometimes repeat or change them), update their details, chit-chat. The last chat of
some customers is still going on at "now".

Ground truth recorded per memory: its customer, order, ticket and case; the state it
asserts and whether a later memory of the same case made it out of date; whether it is a
near-duplicate restatement of an earlier memory; whether it is a promise; its preference
topic. queries.py turns this into labelled queries. Nothing here talks to CaseGraph.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from casegraph.extractors import slugify

from benchmarks import vocabulary as V
from benchmarks.events import EVENTS

# "Now" for the whole benchmark: the service clock is set to it when queries run.
NOW = datetime(2025, 6, 30, 17, 0, tzinfo=UTC)
START = NOW - timedelta(days=365)
SHOP_WEIGHTS = (("homeware-bot", 0.55), ("gadgets-bot", 0.28), ("fashion-bot", 0.17))


@dataclass(frozen=True, slots=True)
class Profile:
    customers: int
    active_sessions: int
    queries_per_kind: int


PROFILES = {
    "full": Profile(customers=340, active_sessions=60, queries_per_kind=66),
    "quick": Profile(customers=36, active_sessions=8, queries_per_kind=8),
    "smoke": Profile(customers=10, active_sessions=3, queries_per_kind=3),  # the test suite's
}


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    first: str
    last: str
    gender: str
    agent: str
    email: str
    phone: str
    city: str
    street: str
    house: int
    handle: str = ""  # an account handle (the chat worlds of worlds.py)

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def pronoun(self) -> str:
        return "she" if self.gender == "f" else "he"

    @property
    def obj(self) -> str:
        return "her" if self.gender == "f" else "him"

    @property
    def pos(self) -> str:
        return "her" if self.gender == "f" else "his"


@dataclass
class GenMemory:
    key: str
    agent: str
    customer: str
    session: str
    content: str
    created_at: datetime
    importance: float
    memory_type: str
    tags: tuple[str, ...]
    customer_link: str  # "tag" | "field" | "session": how the store names the customer
    event: str
    order: str | None = None
    ticket: str | None = None
    case: str | None = None
    product: str | None = None
    state: tuple[str, str] | None = None
    outdated: bool = False
    duplicate_of: str | None = None
    promise: bool = False
    pref_topic: str | None = None
    fact_slot: str | None = None
    mentions: dict[str, str] = field(default_factory=dict)
    slots: dict[str, str] = field(default_factory=dict)  # wording context, for questions
    role: str = ""  # chat worlds: "user" or "agent"
    thread: str | None = None  # chat worlds: the identifier the chat is about


@dataclass
class GenSession:
    key: str
    agent: str
    customer: str
    started_at: datetime
    ended_at: datetime | None  # None: still active at NOW
    memory_keys: list[str] = field(default_factory=list)
    start_customer: bool = True  # False: sessionStart without the customer (identity mid-chat or never)


@dataclass
class Case:
    key: str
    customer: str
    agent: str
    order: str
    problem: str
    product: str
    tickets: list[str] = field(default_factory=list)


@dataclass
class History:
    seed: int
    profile: str
    customers: dict[str, Customer]
    memories: dict[str, GenMemory]
    sessions: dict[str, GenSession]
    cases: dict[str, Case]

    def of_customer(self, customer_id: str) -> list[GenMemory]:
        return [m for m in self.memories.values() if m.customer == customer_id]


class _Generator:
    def __init__(self, seed: int, profile: Profile, name: str) -> None:
        self.rng = random.Random(seed)
        self.profile = profile
        self.history = History(seed, name, {}, {}, {}, {})
        self.orders: set[str] = set()
        self.tickets: set[str] = set()

    # -- identifiers ------------------------------------------------------------------
    def _near_miss(self, existing: set[str], low: int, high: int) -> str:
        """A fresh id; a third of them look like an existing one (swapped or changed digit)."""
        rng = self.rng
        while True:
            if existing and rng.random() < 0.33:
                base = list(rng.choice(sorted(existing)))
                i = rng.randrange(len(base) - 1)
                if rng.random() < 0.5:
                    base[i], base[i + 1] = base[i + 1], base[i]
                else:
                    base[-1] = str((int(base[-1]) + rng.randint(1, 9)) % 10)
                candidate = "".join(base)
            else:
                candidate = str(rng.randint(low, high))
            if candidate not in existing and low <= int(candidate) <= high:
                existing.add(candidate)
                return candidate

    def _order_id(self) -> str:
        return self._near_miss(self.orders, 40000, 69999)

    def _ticket_id(self) -> str:
        return "T-" + self._near_miss(self.tickets, 10000, 99999)

    def _tracking(self) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        return "1Z" + "".join(self.rng.choice(alphabet) for _ in range(16))

    # -- customers --------------------------------------------------------------------
    def customers(self) -> list[Customer]:
        rng = self.rng
        # A smaller pool of first names than customers: many share a first or last name.
        firsts = rng.sample(V.FIRST_NAMES, k=min(len(V.FIRST_NAMES), max(8, self.profile.customers // 6)))
        lasts = rng.sample(V.LAST_NAMES, k=min(len(V.LAST_NAMES), max(8, self.profile.customers // 5)))
        seen: set[str] = set()
        out = []
        while len(out) < self.profile.customers:
            first, gender = rng.choice(firsts)
            last = rng.choice(lasts)
            cid = slugify(f"{first} {last}")
            if cid in seen:
                continue
            seen.add(cid)
            agent = rng.choices([a for a, _ in SHOP_WEIGHTS], [w for _, w in SHOP_WEIGHTS])[0]
            style = rng.randrange(3)
            local = (
                f"{first}.{last}".lower() if style == 0
                else f"{first[0]}{last}{rng.randint(1, 99)}".lower() if style == 1
                else f"{first}{last[0]}{rng.randint(70, 99)}".lower()
            )
            out.append(
                Customer(
                    id=cid, first=first, last=last, gender=gender, agent=agent,
                    email=f"{local}@{rng.choice(V.EMAIL_DOMAINS)}",
                    phone=f"+44 7700 9{rng.randint(0, 99999):05d}",
                    city=rng.choice(V.CITIES), street=rng.choice(V.STREETS), house=rng.randint(2, 98),
                )
            )
        return out

    # -- wording ----------------------------------------------------------------------
    def _slots(self, c: Customer, **extra: str) -> dict[str, str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.2:
            subj = c.first
        elif roll < 0.27:
            subj = c.full
        elif roll < 0.55:
            subj = "the customer"
        else:
            subj = c.pronoun
        products = V.SHOPS[c.agent]
        slots = {
            "subj": subj, "Subj": subj[0].upper() + subj[1:],
            "subj_short": c.pronoun, "Subj_short": c.pronoun.capitalize(),
            "obj": c.obj, "pos": c.pos,
            "box": rng.choice(V.BOX), "damage": rng.choice(V.DAMAGE),
            "city": c.city, "street": c.street, "n": str(c.house),
            "day": rng.choice(V.WEEKDAYS), "staff": (staff := rng.choice(V.STAFF)), "Staff": staff,
            "amount": f"{rng.randint(12, 480)}.{rng.choice(['00', '49', '99'])}",
            "voucher": str(rng.choice((5, 10, 15, 20))), "weeks": str(rng.randint(2, 9)),
            "other": rng.choice(products), "q_broken": rng.choice(V.Q_BROKEN),
            "q_money": rng.choice(V.Q_MONEY), "Full": c.full,
        }
        slots.update(extra)
        if "product" in slots:
            slots["Product"] = slots["product"][0].upper() + slots["product"][1:]
            while slots["other"] == slots["product"]:
                slots["other"] = rng.choice(products)
        slots["a_other"] = ("an " if slots["other"][0] in "aeiou" else "a ") + slots["other"]
        return slots

    @staticmethod
    def _fill(template: str, slots: dict[str, str]) -> str:
        text = template.format_map(slots).strip()
        return text[0].upper() + text[1:]

    # -- building blocks --------------------------------------------------------------
    def _session(self, c: Customer, start: datetime, active: bool = False) -> GenSession:
        key = f"s{len(self.history.sessions):05d}"
        session = GenSession(key, c.agent, c.id, start, None if active else start)
        self.history.sessions[key] = session
        return session

    def _memory(self, c: Customer, session: GenSession, content: str, event: str, importance: float, **kw) -> GenMemory:
        rng = self.rng
        at = (session.ended_at or session.started_at) + timedelta(minutes=rng.randint(1, 4), seconds=rng.randint(0, 59))
        if session.ended_at is not None:
            session.ended_at = at
        link = rng.choices(("tag", "field", "session"), (0.5, 0.2, 0.3))[0]
        tags = list(kw.pop("tags", ()))
        if link == "tag":
            tags.insert(0, f"customer:{c.id}")
        order, ticket = kw.get("order"), kw.get("ticket")
        if order and rng.random() < 0.85:
            tags.append(f"order:{order}")
        if ticket and rng.random() < 0.85:
            tags.append(f"ticket:{ticket}")
        memory = GenMemory(
            key=f"m{len(self.history.memories):05d}", agent=c.agent, customer=c.id, session=session.key,
            content=content, created_at=at,
            importance=round(min(max(importance + rng.uniform(-0.05, 0.05), 0.05), 1.0), 2),
            memory_type=kw.pop("memory_type", "episodic"), tags=tuple(tags), customer_link=link,
            event=event, **kw,
        )
        self.history.memories[memory.key] = memory
        session.memory_keys.append(memory.key)
        return memory

    def _event(self, c: Customer, session: GenSession, name: str, slots: dict[str, str], case: Case | None,
               ticket: str | None, **kw) -> GenMemory:
        ev = EVENTS[name]
        text = self._fill(self.rng.choice(ev.texts), slots)
        mentions = {"tracking": slots["trk"]} if slots.get("trk") and slots["trk"] in text else {}
        return self._memory(
            c, session, text, name, ev.importance,
            order=case.order if case else kw.pop("order", None), ticket=ticket,
            case=case.key if case else None, product=case.product if case else None,
            state=ev.state, promise=ev.promise, mentions=mentions,
            slots=dict(slots), tags=kw.pop("tags", ()),
        )

    def _filler(self, c: Customer, session: GenSession) -> None:
        slots = self._slots(c)
        self._memory(c, session, self._fill(self.rng.choice(V.FILLER), slots), "filler", 0.25)

    # -- a customer's year ------------------------------------------------------------
    def customer_year(self, c: Customer) -> None:
        rng = self.rng
        first_contact = START + timedelta(days=rng.uniform(0, 300), hours=rng.uniform(8, 19))
        # Profile: the first chat records contact details.
        s = self._session(c, first_contact)
        if rng.random() < 0.7:
            m = self._memory(c, s, f"Account e-mail on file: {c.email}.", "profile_email", 0.5, memory_type="semantic")
            m.mentions["email"] = c.email
        if rng.random() < 0.5:
            m = self._memory(c, s, f"Mobile number confirmed as {c.phone}.", "profile_phone", 0.5, memory_type="semantic")
            m.mentions["phone"] = c.phone
        if not s.memory_keys or rng.random() < 0.5:
            self._filler(c, s)

        self._preferences(c, first_contact)
        n_cases = rng.choices((0, 1, 2, 3), (0.1, 0.45, 0.33, 0.12))[0]
        problem = None
        for _ in range(n_cases):
            # Repeated problems: a third of repeat cases go wrong the same way again.
            problem = problem if problem and rng.random() < 0.33 else rng.choice(
                ("damage", "damage", "late", "late", "wrong", "defect", "billing", "cancel")
            )
            start = first_contact + timedelta(days=rng.uniform(0, max((NOW - first_contact).days - 4, 1)))
            self._case(c, problem, start)
        for _ in range(rng.choices((0, 1, 2), (0.35, 0.45, 0.2))[0]):
            at = first_contact + timedelta(days=rng.uniform(1, max((NOW - first_contact).days - 1, 2)))
            self._misc(c, at)

    def _preferences(self, c: Customer, first_contact: datetime) -> None:
        rng = self.rng
        topics = rng.sample(sorted(V.PREFERENCES), k=rng.choices((1, 2, 3), (0.4, 0.4, 0.2))[0])
        for topic in topics:
            at = first_contact + timedelta(days=rng.uniform(0, max((NOW - first_contact).days - 2, 1)))
            first = self._preference(c, topic, at)
            later_days = (NOW - at).days - 2
            if later_days > 3 and rng.random() < 0.25:
                # Restated in a later chat, nearly word for word: a near-duplicate store.
                s = self._session(c, at + timedelta(days=rng.uniform(2, later_days)))
                text = first.content
                tweak = rng.randrange(3)
                if tweak == 1:
                    text = text.rstrip(".")
                elif tweak == 2:
                    text = "Reminder: " + text[0].lower() + text[1:]
                self._memory(c, s, text, "preference", first.importance, memory_type="semantic",
                             pref_topic=topic, duplicate_of=first.key, slots=first.slots)
            elif later_days > 3 and topic != "marketing" and rng.random() < 0.15:
                # Changed later: the old preference is out of date (ground truth only).
                newer = self._preference(c, topic, at + timedelta(days=rng.uniform(2, later_days)), avoid=first)
                if newer.content != first.content:
                    first.outdated = True

    def _preference(self, c: Customer, topic: str, at: datetime, avoid: GenMemory | None = None) -> GenMemory:
        rng = self.rng
        texts, _ = V.PREFERENCES[topic]
        drop, drop_alt = rng.choice(V.DROPS)
        slots = self._slots(
            c, channel=rng.choice(V.CHANNELS), time=rng.choice(V.CALL_TIMES), language=rng.choice(V.LANGUAGES),
        )
        slots["drop"], slots["drop_alt"] = drop.format_map(slots), drop_alt.format_map(slots)
        if avoid is not None:  # a changed preference: another value than before
            for key, pool in (("channel", V.CHANNELS), ("time", V.CALL_TIMES), ("language", V.LANGUAGES)):
                while slots[key] == avoid.slots[key]:
                    slots[key] = rng.choice(pool)
            while slots["drop"] == avoid.slots["drop"]:
                drop, drop_alt = rng.choice(V.DROPS)
                slots["drop"], slots["drop_alt"] = drop.format_map(slots), drop_alt.format_map(slots)
        s = self._session(c, at)
        if rng.random() < 0.4:
            self._filler(c, s)
        return self._memory(c, s, self._fill(rng.choice(texts), slots), "preference", 0.7,
                            memory_type="semantic", pref_topic=topic, slots=slots, tags=("preference",))

    def _misc(self, c: Customer, at: datetime) -> None:
        rng = self.rng
        s = self._session(c, at)
        roll = rng.random()
        if roll < 0.2:
            m = self._memory(c, s, f"Changed the account e-mail to {c.email}.", "profile_email", 0.5, memory_type="semantic")
            m.mentions["email"] = c.email
        elif roll < 0.35:
            m = self._memory(c, s, f"Best number for {c.obj} is now {c.phone}.", "profile_phone", 0.5, memory_type="semantic")
            m.mentions["phone"] = c.phone
        elif roll < 0.5:
            self._memory(c, s, f"Updated the delivery address to {c.house} {c.street}, {c.city}.", "address", 0.5,
                         memory_type="semantic")
        for _ in range(rng.choice((1, 1, 2))):
            self._filler(c, s)

    # -- cases ------------------------------------------------------------------------
    def _case(self, c: Customer, problem: str, start: datetime) -> None:
        rng = self.rng
        product = rng.choice(V.SHOPS[c.agent])
        case = Case(f"c{len(self.history.cases):04d}", c.id, c.agent, self._order_id(), problem, product)
        self.history.cases[case.key] = case
        o = case.order
        base = self._slots(c, product=product, o=o, trk=self._tracking())

        def slots(**extra: str) -> dict[str, str]:
            fresh = self._slots(c, product=product, o=o, trk=base["trk"])
            fresh["of_order"] = rng.choice(V.OF_ORDER).format(o=o)
            fresh.update(extra)
            return fresh

        plan: list[list[str]] = []
        path = rng.choice(("refund", "replacement"))
        if problem == "damage":
            first = ["damage_report"] + (["photos_requested"] if rng.random() < 0.6 else [])
            first += ["refund_requested"] if path == "refund" and rng.random() < 0.5 else []
            plan = [first]
            plan += [["refund_pending"], ["refund_approved"]] if path == "refund" else [
                ["replacement_approved"], ["replacement_shipped"]] + ([["replacement_delivered"]] if rng.random() < 0.5 else [])
        elif problem == "late":
            plan = [["delay_report"], ["delivery_delayed"]]
            if rng.random() < 0.5:
                plan += [["delivery_lost"], ["refund_approved"] if path == "refund" else ["replacement_shipped"]]
            else:
                plan += [["delivery_delivered"]]
                path = "none"
        elif problem == "wrong":
            plan = [["wrong_report", "return_label"], ["return_received"],
                    ["refund_approved"] if path == "refund" else ["replacement_shipped"]]
        elif problem == "defect":
            plan = [["defect_report", "troubleshoot"], ["warranty"], ["replacement_shipped"]]
            path = "replacement"
        elif problem == "billing":
            plan = [["charge_report"], ["refund_pending"], ["refund_approved"]]
            path = "refund"
        else:  # cancel
            plan = [["cancel_request"], ["cancel_confirmed"]]
            path = "none"
        # Promises are made in the first or second chat.
        if rng.random() < 0.6:
            plan[rng.choice((0, 0, 1)) if len(plan) > 1 else 0].append("promise")
        if rng.random() < 0.7 and problem != "cancel":
            plan[-1].append("ticket_resolved")

        ticket = self._ticket_id() if problem != "cancel" or rng.random() < 0.5 else None
        if ticket:
            case.tickets.append(ticket)
        at = start
        if rng.random() < 0.4 and problem in ("damage", "late", "wrong"):
            s = self._session(c, at)
            self._event(c, s, "where_is", slots(), case, None)
            at += timedelta(days=rng.uniform(1, 4))
        for events in plan:
            at += timedelta(days=rng.uniform(1.5, 8), hours=rng.uniform(-3, 3))
            if at > NOW - timedelta(hours=2):
                return  # the case is still going on at NOW
            s = self._session(c, self._daytime(at))
            for name in events:
                extra = {"trk": self._tracking()} if name == "replacement_shipped" else {}
                self._event(c, s, name, slots(on_ticket=self._on_ticket(ticket), t=ticket or "", **extra), case, ticket)
            if rng.random() < 0.35:
                self._filler(c, s)
        # A second ticket about the same order, weeks later.
        if path in ("refund", "replacement") and rng.random() < 0.35:
            t2 = self._ticket_id()
            case.tickets.append(t2)
            follow = [["refund_missing"], ["refund_traced"]] if path == "refund" else [["second_damage"], ["refund_approved"]]
            if rng.random() < 0.6:
                follow[-1].append("ticket_resolved")
            for events in follow:
                at += timedelta(days=rng.uniform(6, 25))
                if at > NOW - timedelta(hours=2):
                    return
                s = self._session(c, self._daytime(at))
                for name in events:
                    self._event(c, s, name, slots(on_ticket=self._on_ticket(t2), t=t2), case, t2)

    def _daytime(self, at: datetime) -> datetime:
        """Office hours on that day, never later than an hour before NOW."""
        return min(at.replace(hour=self.rng.randint(8, 19)), NOW - timedelta(hours=1))

    def _on_ticket(self, ticket: str | None) -> str:
        if not ticket:
            return ""
        return self.rng.choice(V.ON_TICKET).format(t=ticket)

    # -- chats still going on at NOW ----------------------------------------------------
    def active_sessions(self, customers: list[Customer]) -> None:
        rng = self.rng
        for c in rng.sample(customers, k=min(self.profile.active_sessions, len(customers))):
            s = self._session(c, NOW - timedelta(minutes=rng.randint(30, 50)), active=True)
            facts = rng.sample(V.SESSION_FACTS, k=5)
            at = s.started_at
            for slot, texts, _questions in facts:
                at += timedelta(minutes=rng.randint(1, 4))
                slots = self._slots(c)
                m = self._memory(c, s, self._fill(rng.choice(texts), slots), "session_fact", 0.5,
                                 memory_type="working", fact_slot=slot, slots=slots)
                m.created_at = at
            if rng.random() < 0.5:
                self._filler(c, s)
                self.history.memories[s.memory_keys[-1]].created_at = at + timedelta(minutes=1)

    # -- ground truth -------------------------------------------------------------------
    def mark_outdated(self) -> None:
        """Within a case, a topic's earlier statements are out of date once restated differently."""
        groups: dict[tuple[str, str, str], list[GenMemory]] = {}
        for m in self.history.memories.values():
            if m.state is None or m.case is None:
                continue
            topic = m.state[0]
            subject = m.ticket if topic == "ticket" else self.history.cases[m.case].order
            if subject:
                groups.setdefault((m.case, subject, topic), []).append(m)
        for items in groups.values():
            items.sort(key=lambda m: m.created_at)
            for older, newer in zip(items, items[1:], strict=False):
                if newer.state != older.state:
                    older.outdated = True


def _mark_repeats(history: History) -> None:
    """The same words about the same things, for the same customer, said again: a near-duplicate."""
    seen: dict[tuple, str] = {}
    for m in sorted(history.memories.values(), key=lambda m: (m.created_at, m.key)):
        links = frozenset(t for t in m.tags if t.startswith(("order:", "ticket:")))
        key = (m.agent, m.customer, m.memory_type, m.content.lower().rstrip(". "), links)
        if key in seen and m.duplicate_of is None:
            m.duplicate_of = seen[key]
        seen.setdefault(key, m.key)


def generate(seed: int = 42, profile: str = "full") -> History:
    """The history for ``seed`` and ``profile`` ("full" or "quick"); same inputs, same history."""
    gen = _Generator(seed, PROFILES[profile], profile)
    customers = gen.customers()
    for c in customers:
        gen.history.customers[c.id] = c
        gen.customer_year(c)
    gen.active_sessions(customers)
    gen.mark_outdated()
    _mark_repeats(gen.history)
    ordered = sorted(gen.history.memories.values(), key=lambda m: (m.created_at, m.key))
    gen.history.memories = {m.key: m for m in ordered}
    return gen.history
