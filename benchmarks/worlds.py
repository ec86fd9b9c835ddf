"""Worlds: generated support histories that differ in what a recall system may assume.

The first quality benchmark had one generator, and it shared the extractor's assumptions:
every id in a shape a rule knows, customers tagged, identity known from the first
message. A world here varies them (seeded, deterministic):

- ``ids``       identifier formats: digits only, ``#W1588712``, booking codes ``M20IZO``,
                ``RMA-``/``INC``/``REQ-`` references, MultiWOZ-style references, or shapes
                no extractor rule names (the ``novel`` world, never tuned on);
- ``handles``   customers give an account handle (``firstname_lastname_6699``) or an e-mail;
- ``names_in``  ``tags``: every memory is tagged ``customer:<id>``; ``text``: no tags, the
                customer appears only in what is said;
- ``identity``  when the bot passes ``customerId``: from the session's start, mid-chat from
                the message after it looked the customer up, or never;
- ``ended``     whether the bot ends sessions (``sessionEnd``, which writes a summary);
- ``prefix``    ``user:``/``assistant:``, ``Customer:``/``Agent:`` or none before each message.

The bot stores every user and agent message as a memory, one session per chat. The
``shop`` world is the original generator (histories.py); ``multiwoz`` builds its chats
from real MultiWOZ utterances (benchmarks/data), with customers and ids injected.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from benchmarks import chat_vocabulary as CV
from benchmarks import vocabulary as V
from benchmarks.histories import NOW, Customer, GenMemory, GenSession, History, generate


@dataclass(frozen=True, slots=True)
class World:
    name: str
    domain: str  # retail | airline | helpdesk | travel (MultiWOZ)
    ids: str
    handles: bool
    names_in: str  # tags | text
    identity: str  # start | midchat | never
    ended: bool
    prefix: str  # user | customer | none
    tuned: bool = True  # False: held out of every tuning (reported only)
    real: bool = False  # utterances from a public dialogue corpus

    def describe(self) -> str:
        if self.name == "shop":
            return "original generator: digit/T- ids, half the memories tagged, identity known from the start"
        who = "handles" if self.handles else "e-mails"
        return (f"{self.domain}, ids {self.ids}, {who}, names in {self.names_in}, identity {self.identity}, "
                f"sessions {'ended' if self.ended else 'never ended'}, prefix {self.prefix}"
                + (", real utterances (MultiWOZ)" if self.real else "") + ("" if self.tuned else ", never tuned on"))


WORLDS: dict[str, World] = {
    w.name: w for w in (
        World("shop", "retail", "digits", False, "tags", "start", True, "none"),
        World("retail", "retail", "hash_w", True, "text", "midchat", False, "user"),
        World("airline", "airline", "booking", True, "text", "midchat", True, "customer"),
        World("helpdesk", "helpdesk", "rma_inc", False, "tags", "start", True, "none"),
        World("anonymous", "retail", "digits", False, "text", "never", False, "customer"),
        World("multiwoz", "travel", "multiwoz", False, "text", "midchat", True, "user", real=True),
        World("novel", "helpdesk", "novel", True, "text", "midchat", False, "user", tuned=False),
    )
}

# customers, chats-per-customer weights, queries per kind
CHAT_PROFILES = {"full": (55, 35), "quick": (16, 8), "smoke": (5, 3)}
PREFIXES = {"user": ("user: ", "assistant: "), "customer": ("Customer: ", "Agent: "), "none": ("", "")}
AGENT = "support-bot"
_UTTERANCES = Path(__file__).parent / "data" / "multiwoz_utterances.json"


def generate_world(world: World, seed: int, profile: str) -> History:
    """The world's history (same world, seed and profile: the same history)."""
    if world.name == "shop":
        return generate(seed, profile)
    gen = _Chats(world, seed, profile)
    gen.run()
    ordered = sorted(gen.history.memories.values(), key=lambda m: (m.created_at, m.key))
    gen.history.memories = {m.key: m for m in ordered}
    return gen.history


class _Chats:
    def __init__(self, world: World, seed: int, profile: str) -> None:
        # The world's name is part of the seed: two worlds never share customers or ids.
        self.rng = random.Random(f"{world.name}:{seed}")
        self.world = world
        self.n_customers = CHAT_PROFILES[profile][0]
        self.history = History(seed, profile, {}, {}, {}, {})
        self.used_ids: set[str] = set()
        self.utterances = json.loads(_UTTERANCES.read_text()) if world.real else None

    # -- identifiers --------------------------------------------------------------------
    def new_id(self, noun: str) -> str:
        rng, fmt = self.rng, self.world.ids
        letters, alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ", "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        while True:
            if fmt == "digits":
                value = str(rng.randint(1_000_000, 9_999_999))
            elif fmt == "hash_w":
                value = f"#W{rng.randint(1_000_000, 9_999_999)}"
            elif fmt == "booking":
                value = "".join(rng.choice(alnum) for _ in range(6))
            elif fmt == "multiwoz":
                value = "".join(rng.choice(alnum) for _ in range(8))
            elif fmt == "rma_inc":
                value = {"return": f"RMA-{rng.randint(100000, 999999)}", "incident": f"INC{rng.randint(1000000, 9999999)}",
                         "request": f"REQ-{rng.randint(10000, 99999)}"}[noun]
            else:  # novel: shapes no rule was written for
                value = {"return": f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(100, 999)}-"
                                   f"{rng.choice(letters)}{rng.randint(1, 9)}",
                         "incident": f"{rng.choice(letters).lower()}{rng.randint(10, 99)}{rng.choice(letters).lower()}"
                                     f".{rng.randint(1000, 9999)}",
                         "request": f"{rng.randint(10, 99)}/{rng.choice(letters)}{rng.choice(letters)}{rng.randint(10, 99)}"}[noun]
            has_digit = any(ch.isdigit() for ch in value)
            has_letter = fmt in ("digits", "hash_w", "rma_inc", "novel") or any(ch.isalpha() for ch in value)
            if value not in self.used_ids and has_digit and has_letter:
                self.used_ids.add(value)
                return value

    # -- customers ----------------------------------------------------------------------
    def customers(self) -> list[Customer]:
        rng = self.rng
        firsts = rng.sample(V.FIRST_NAMES, k=min(len(V.FIRST_NAMES), max(6, self.n_customers // 3)))
        lasts = rng.sample(V.LAST_NAMES, k=min(len(V.LAST_NAMES), max(6, self.n_customers // 2)))
        out: list[Customer] = []
        seen: set[str] = set()
        while len(out) < self.n_customers:
            (first, gender), last = rng.choice(firsts), rng.choice(lasts)
            if f"{first} {last}" in seen:
                continue
            seen.add(f"{first} {last}")
            if self.world.ids == "novel":
                handle = f"{first[0]}{last}{rng.randint(10, 99)}".lower()
            else:
                handle = f"{first}_{last}_{rng.randint(1000, 9999)}".lower()
            cid = handle if self.world.handles else f"cust-{rng.randint(10000, 99999)}"
            local = rng.choice((f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}{rng.randint(70, 99)}"))
            out.append(Customer(
                id=cid, first=first, last=last, gender=gender, agent=AGENT,
                email=f"{local.lower()}@{rng.choice(V.EMAIL_DOMAINS)}", phone=f"+1 555 01{rng.randint(10, 99)}",
                city=rng.choice(V.CITIES), street=rng.choice(V.STREETS), house=rng.randint(2, 98), handle=handle,
            ))
        return out

    def run(self) -> None:
        rng = self.rng
        for c in self.customers():
            self.history.customers[c.id] = c
            n = rng.choices((1, 2, 3, 4), (0.4, 0.32, 0.18, 0.1))[0]
            days = sorted(rng.uniform(2, 120) for _ in range(n))
            cases: list[tuple[str, str, str, str]] = []  # (case type, noun, id, item)
            for ago in days:
                at = NOW - timedelta(days=ago, hours=rng.uniform(0, 9))
                at = at.replace(hour=max(at.hour, 8))
                if cases and rng.random() < 0.3 and self.world.domain != "travel":
                    self.chat(c, at, cases[-1], follow_up=True)
                elif rng.random() < 0.15 and self.world.domain != "travel":
                    self.chat(c, at, None)
                else:
                    cases.append(self.new_case())
                    self.chat(c, at, cases[-1])

    def new_case(self) -> tuple[str, str, str, str]:
        if self.world.domain == "travel":
            kind = self.rng.choice(("Hotel", "Restaurant", "Train"))
            return kind, "reservation", self.new_id("reservation"), kind.lower()
        kind = self.rng.choice(sorted(CV.DOMAINS[self.world.domain]))
        noun, items = CV.DOMAINS[self.world.domain][kind][:2]
        return kind, noun, self.new_id(noun), self.rng.choice(items)

    # -- one chat -----------------------------------------------------------------------
    def chat(self, c: Customer, at, case: tuple[str, str, str, str] | None, follow_up: bool = False) -> None:
        turns = self.travel_turns(c, case) if self.world.domain == "travel" else self.turns(c, case, follow_up)
        w = self.world
        key = f"s{len(self.history.sessions):05d}"
        session = GenSession(key, AGENT, c.id, at, None)
        self.history.sessions[key] = session
        known = {"start": 0, "never": None}.get(w.identity)
        if w.identity == "midchat":  # from the bot's message after the look-up on
            known = next(i for i, (_, _, flag) in enumerate(turns) if flag == "lookup")
        t = at
        user_prefix, agent_prefix = PREFIXES[w.prefix]
        for i, (role, text, _flag) in enumerate(turns):
            t += timedelta(seconds=self.rng.randint(15, 100))
            if known is None or i < known:
                link = "none"
            else:
                link = "tag" if w.names_in == "tags" else "field"
            memory = GenMemory(
                key=f"m{len(self.history.memories):05d}", agent=AGENT, customer=c.id, session=key,
                content=(user_prefix if role == "user" else agent_prefix) + text, created_at=t, importance=0.5,
                memory_type="episodic", tags=(f"customer:{c.id}",) if link == "tag" else (), customer_link=link,
                event="chat", order=case[2] if case and case[2] in text else None, role=role,
                thread=case[2] if case else None, slots={"noun": case[1]} if case else {},
            )
            self.history.memories[memory.key] = memory
            session.memory_keys.append(memory.key)
        session.start_customer = known == 0
        if w.ended:
            session.ended_at = t

    def identity_turn(self, c: Customer) -> str:
        rng = self.rng
        if self.world.handles:
            return rng.choice((f"Sure, my user id is {c.handle}.", f"It's {c.full}, user id {c.handle}.", c.handle,
                               f"My name is {c.full} and my zip code is {rng.randint(10000, 99999)}."))
        return rng.choice((f"It's {c.full}, {c.email}.", f"My e-mail is {c.email}.", f"{c.full} here, e-mail {c.email}",
                           f"{c.email}"))

    def turns(self, c: Customer, case, follow_up: bool) -> list[tuple[str, str, str]]:
        """(role, text, flag) of a chat; flag "lookup" marks the bot's message after the look-up."""
        rng = self.rng
        slots = {"amount": f"${rng.randint(12, 480)}.{rng.choice(('00', '49', '99'))}", "day": rng.choice(CV.DAYS),
                 "voucher": f"${rng.choice((5, 10, 15, 20))}"}
        identify = [("agent", rng.choice(CV.ASK_IDENTITY["handle" if self.world.handles else "email"]), ""),
                    ("user", self.identity_turn(c), ""),
                    ("agent", rng.choice(CV.CONFIRM).format(first=rng.choice(("", f" {c.first}"))), "lookup")]
        if case is None:
            (q1, a1), (q2, a2) = rng.sample(CV.GENERAL[self.world.domain], 2)
            return [("user", q1, ""), *identify, ("agent", a1, ""), ("user", q2, ""), ("agent", a2, ""),
                    ("user", rng.choice(CV.CLOSE), ""), ("agent", "Anything else I can help with?", "")]
        kind, noun, ident, item = case
        _noun, _items, openings, details, outcomes, follow_ups = CV.DOMAINS[self.world.domain][kind]
        fill = dict(slots, id=ident, item=item, noun=noun)
        opening = (rng.choice(follow_ups) if follow_up else rng.choice(openings)).format(**fill)
        out = [("user", opening, ""), *identify]
        if ident not in opening:
            out += [("agent", CV.ASK_ID[noun], ""), ("user", rng.choice(CV.GIVE_ID).format(**fill), "")]
        out.append(("agent", rng.choice(CV.SEE_ID).format(**fill), ""))
        for q, a in rng.sample(details, k=rng.randint(2, min(3, len(details)))):
            out += [("user", q.format(**fill), ""), ("agent", a.format(**fill), "")]
        outcome = rng.choice(outcomes).format(**fill)
        if rng.random() < 0.3:
            outcome = f"{noun.capitalize()} {ident}: " + outcome[0].lower() + outcome[1:]
        out += [("user", rng.choice(CV.CLOSE), ""), ("agent", outcome, "")]
        return out

    # -- MultiWOZ chats -----------------------------------------------------------------
    def travel_turns(self, c: Customer, case) -> list[tuple[str, str, str]]:
        """A booking chat of real MultiWOZ utterances (slot values and the customer injected)."""
        rng, u = self.rng, self.utterances
        assert u is not None and case is not None
        domain, _noun, ref, _item = case
        values = {
            "AREA": rng.choice(("north", "south", "centre", "east", "west")), "PRICE": rng.choice(("cheap", "moderate", "expensive")),
            "STARS": str(rng.randint(2, 5)), "TYPE": rng.choice(("guesthouse", "hotel")), "FOOD": rng.choice(("Italian", "Indian", "Chinese", "British")),
            "DAY": rng.choice(("monday", "tuesday", "friday", "saturday")), "PEOPLE": str(rng.randint(1, 6)),
            "STAY": str(rng.randint(1, 4)), "TIME": f"{rng.randint(11, 20)}:{rng.choice(('00', '15', '30', '45'))}",
            "DEPART": rng.choice(("Cambridge", "London Kings Cross", "Ely", "Norwich")), "DEST": rng.choice(("Cambridge", "Stansted Airport", "Peterborough")),
            "LEAVE": f"{rng.randint(6, 21):02d}:{rng.choice(('05', '24', '40'))}", "ARRIVE": f"{rng.randint(7, 23):02d}:{rng.choice(('10', '31', '52'))}",
            "NAME": rng.choice(("Acorn Guest House", "Golden Wok", "Hamilton Lodge", "Pizza Hut Cherry Hinton", "Alexander B&B")),
            "CHOICE": str(rng.randint(2, 12)), "ID": f"TR{rng.randint(1000, 9999)}", "TICKET": f"{rng.randint(5, 40)}.{rng.choice(('10', '60'))} GBP",
            "ADDR": f"{rng.randint(2, 150)} Regent Street", "PHONE": f"01223{rng.randint(100000, 999999)}", "POST": f"CB{rng.randint(1, 5)}{rng.randint(1, 9)}DP",
            "REF": ref,
        }

        def fill(text: str) -> str:
            for slot, value in values.items():
                text = _fill_slot(text, slot, value)
            return text

        def say(side: str, act: str) -> str:
            return fill(rng.choice(u[side][act]))

        book = "Train-OfferBooked" if domain == "Train" else "Booking-Book"
        out = [("user", say("user", f"{domain}-Inform"), ""), ("agent", say("system", f"{domain}-Request"), ""),
               ("user", say("user", f"{domain}-Inform"), ""),
               ("agent", rng.choice(CV.ASK_IDENTITY["email"]), ""), ("user", self.identity_turn(c), ""),
               ("agent", rng.choice(CV.CONFIRM).format(first=rng.choice(("", f" {c.first}"))), "lookup"),
               ("agent", say("system", f"{domain}-Inform"), "")]
        for _ in range(rng.randint(1, 2)):
            out += [("user", say("user", f"{domain}-Request"), ""), ("agent", say("system", f"{domain}-Inform"), "")]
        out += [("user", say("user", f"{domain}-Request"), ""), ("agent", say("system", book), ""),
                ("user", say("user", "general-thank"), ""), ("agent", say("system", "general-welcome"), "")]
        return out


def _fill_slot(text: str, slot: str, value: str) -> str:
    import re

    return re.sub(rf"#[A-Z]+-[A-Z]+-{slot}#", value, text)
