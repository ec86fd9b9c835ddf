"""Customer identity (issue 21): a session that learns its customer mid-chat links what it
stored before; a customer's aliases (names, e-mails, phones, handles, the words of its id)
are learned from its memories and found by recall. Real Kùzu, model and spaCy."""

from __future__ import annotations

from casegraph.domain.models import RecallFilter, StoreRequest
from casegraph.extractors import aliases as identity
from casegraph.extractors.aliases import Alias

from tests.conftest import LiveServer
from tests.storage.backends import graph_rows

CHAT = [
    "user: Hi, my name is Jane Doe. My parcel never arrived.",
    "assistant: Sorry to hear that! Could you give me the e-mail on your account?",
    "user: it's jane.doe@example.com",
]
LOOKED_UP = "assistant: Thanks, I found your account jane_doe_6699. Order #4521 is delayed at the depot."
AFTER = "user: ok, please let me know when it moves"


def chat(services, customer: str = "cust-1177", agent: str = "bot") -> tuple[str, list[str]]:
    """The bot's way: a session, three messages before the lookup, the lookup, one after."""
    memories = services.memories
    session = memories.session_start(agent)
    ids = [memories.store(StoreRequest(agent_id=agent, content=t, session_id=session.id)).id for t in CHAT]
    ids.append(memories.store(
        StoreRequest(agent_id=agent, content=LOOKED_UP, session_id=session.id, customer_id=customer)).id)
    ids.append(memories.store(StoreRequest(agent_id=agent, content=AFTER, session_id=session.id)).id)
    return session.id, ids


def aliases_of(graph, customer: str, agent: str = "bot") -> dict[tuple[str, str], str]:
    return {(a.kind, a.key): a.source for a in graph.customer_aliases(agent, customer)}


def gql(server: LiveServer, query: str, variables: dict | None = None) -> dict:
    body = server.gql(query, variables)
    assert "errors" not in body, body
    return body["data"]


# -- learning aliases from text (pure) ------------------------------------------------
def test_names_come_from_the_customers_own_words():
    said = identity.text_aliases
    assert said("user: Hi, my name is jane doe and my order is late", []) == [Alias("name", "jane doe", "jane doe")]
    assert said("user: Hello, it's Jane Doe here", []) == [Alias("name", "jane doe", "Jane Doe")]
    assert said("I'm Omar Haddad, calling about a refund", []) == [Alias("name", "omar haddad", "Omar Haddad")]
    # Not names: lower-case words after "I'm"/"it's", days, the agent introducing itself.
    assert said("user: I'm looking for my order. This is urgent, it's Monday", []) == []
    assert said("assistant: Hi, this is Sarah from support", []) == []
    # A PERSON counts in the customer's own message, not in the agent's.
    assert said("user: please ask Maria Lopez", [("person", "Maria Lopez", "maria lopez")]) == [
        Alias("name", "maria lopez", "Maria Lopez")]
    assert said("assistant: Maria Lopez will call you", [("person", "Maria Lopez", "maria lopez")]) == []
    # ...and when it looks like a full name, not a place the small model mistook.
    assert said("user: I'm going to Peterborough", [("person", "Peterborough", "peterborough")]) == []
    assert said("user: a taxi to Cherry Hinton", [("person", "Cherry Hinton", "cherry hinton")]) == []
    assert said("Customer: Anna Baker here, e-mail ab@example.net", []) == [Alias("name", "anna baker", "Anna Baker")]
    assert said("Customer: The Kirkwood House here is fine. Hmm, it's Hmm", []) == []
    assert said("user: it's RMA-311975, and this is UPS", []) == []


def test_handles_e_mails_phones_and_ids_are_aliases():
    found = identity.text_aliases(
        "assistant: account mia_garcia_4521, mail mia@example.com, phone +44 7946 095800",
        [("email", "mia@example.com", "mia@example.com"), ("phone", "+44 7946 095800", "+447946095800")],
    )
    assert {(a.kind, a.key) for a in found} == {
        ("handle", "mia_garcia_4521"), ("name", "mia garcia"), ("email", "mia@example.com"), ("phone", "+447946095800")}
    # An e-mail whose local part spells a name.
    found = identity.text_aliases("user: james.wilson@mail.example.com",
                                  [("email", "james.wilson@mail.example.com", "james.wilson@mail.example.com")])
    assert {(a.kind, a.key) for a in found} == {("email", "james.wilson@mail.example.com"), ("name", "james wilson")}
    assert identity.id_aliases("cust-jane-doe") == [Alias("name", "jane doe", "Jane Doe")]
    assert identity.id_aliases("cust-1177") == []
    assert {a.key for a in identity.id_aliases("firstname_lastname_1177")} == {"firstname_lastname_1177",
                                                                                "firstname lastname"}
    assert identity.id_aliases("ann@example.com") == [Alias("email", "ann@example.com", "ann@example.com")]


# -- mid-chat identity ------------------------------------------------------------------
def test_a_customer_learned_mid_chat_owns_the_whole_session(live_server, open_services, tmp_path):
    services = live_server.services
    session_id, ids = chat(services)
    other_session, other_ids = chat(services, customer="cust-2200", agent="other-bot")
    graph, now = services.graph, services.memories.clock()

    # The three messages before the lookup, the lookup and the one after: all hers.
    assert {m.id for m in graph.customer_memories("bot", "cust-1177", now)} == set(ids)
    assert services.memories.session_get(session_id).customer_id == "cust-1177"
    assert [s.id for s in graph.list_sessions("bot", customer_id="cust-1177")] == [session_id]
    # The customer filter (ABOUT edges + the attribute cache) sees them all.
    hits = services.recall.recall("bot", "parcel", 10, RecallFilter(customer_id="cust-1177"))
    assert {h.memory.id for h in hits} == set(ids)
    # So do the GraphQL readers.
    data = gql(live_server, '{ customer(agentId: "bot", id: "cust-1177") { memories { id } sessions { id } '
                            'aliases { kind key value source } } '
                            'customerContext(agentId: "bot", customerId: "cust-1177", limit: 10) '
                            '{ memories { memory { id } } } }')
    assert {m["id"] for m in data["customer"]["memories"]} == set(ids)
    assert [s["id"] for s in data["customer"]["sessions"]] == [session_id]
    assert {m["memory"]["id"] for m in data["customerContext"]["memories"]} == set(ids)
    aliases = {(a["kind"], a["key"]): a["source"] for a in data["customer"]["aliases"]}
    assert aliases == {
        ("name", "jane doe"): ids[0],  # "my name is Jane Doe", said before the lookup
        ("email", "jane.doe@example.com"): ids[2],
        ("handle", "jane_doe_6699"): ids[3],
    }
    exported = gql(live_server, '{ exportCustomer(agentId: "bot", customerId: "cust-1177") }')["exportCustomer"]
    assert {m["id"] for m in exported["memories"]} == set(ids)
    assert [s["id"] for s in exported["sessions"]] == [session_id]
    assert {(a["kind"], a["key"]) for a in exported["aliases"]} == set(aliases)

    # Restart: the links and the aliases are in the graph.
    live_server.__exit__(None, None, None)
    services.close()
    reopened = open_services(tmp_path / "data")
    assert {m.id for m in reopened.graph.customer_memories("bot", "cust-1177", now)} == set(ids)
    assert aliases_of(reopened.graph, "cust-1177") == aliases
    assert reopened.memories.session_get(session_id).customer_id == "cust-1177"

    # Erasure takes every one of them, and what she was known by.
    with LiveServer(reopened, reopened.settings) as server:
        receipt = gql(server, 'mutation { forgetCustomer(agentId: "bot", customerId: "cust-1177") '
                              '{ memories sessions aliases vectors } }')["forgetCustomer"]
    assert receipt == {"memories": 5, "sessions": 1, "aliases": 3, "vectors": 5}
    assert reopened.graph.get_memories("bot", ids) == {}
    assert reopened.graph.get_session(session_id) is None
    assert graph_rows(reopened.graph, "bot", "MATCH (n:Alias) WHERE n.agent_id = 'bot' RETURN n.uid") == []
    # The other agent's customer is untouched.
    assert {m.id for m in reopened.graph.customer_memories("other-bot", "cust-2200", now)} == set(other_ids)
    assert other_session


def test_a_customer_given_at_the_start_and_learned_aliases(services):
    memories, graph = services.memories, services.graph
    session = memories.session_start("bot", customer_id="cust-jane-doe")
    first = memories.store(StoreRequest(agent_id="bot", content="user: this is Jane, reach me at +1 415 555 0134",
                                        session_id=session.id))
    assert first.customer_id == "cust-jane-doe"
    assert aliases_of(graph, "cust-jane-doe") == {
        ("name", "jane doe"): "id", ("name", "jane"): first.id, ("phone", "+14155550134"): first.id}
    # Forgetting the memory unlearns what only it said.
    memories.forget("bot", first.id)
    assert aliases_of(graph, "cust-jane-doe") == {("name", "jane doe"): "id"}


def test_the_session_learns_its_customer_from_a_store_that_merged_into_a_near_duplicate(services):
    graph, now = services.graph, services.memories.clock()
    lookup = "assistant: Thanks, I've found your account."
    first = store_chat(services, "cust-9", ["user: where is my parcel?", "assistant: Your e-mail please?",
                                            "user: zoe.ray@example.com", lookup])
    second = store_chat(services, "cust-9", ["user: my parcel is late again", "assistant: Your e-mail please?",
                                             lookup, "user: thanks"], at=2)
    # The second chat's look-up merged into the first one's: its session still learned.
    assert second[2] == first[3]
    assert {m.id for m in graph.customer_memories("bot", "cust-9", now)} == set(first + second)
    assert ("name", "zoe ray") in aliases_of(graph, "cust-9")


def test_a_store_naming_the_customer_never_rewrites_a_session_that_has_one(services):
    memories, graph, now = services.memories, services.graph, services.memories.clock()
    session = memories.session_start("bot", customer_id="ann")
    early = memories.store(StoreRequest(agent_id="bot", content="user: hello", session_id=session.id))
    other = memories.store(StoreRequest(agent_id="bot", content="assistant: noted for Ben too",
                                        session_id=session.id, customer_id="ben"))
    assert memories.session_get(session.id).customer_id == "ann"
    assert {m.id for m in graph.customer_memories("bot", "ann", now)} == {early.id, other.id}
    assert {m.id for m in graph.customer_memories("bot", "ben", now)} == {other.id}


# -- recall by alias ------------------------------------------------------------------
def store_chat(services, customer: str, lines: list[str], at: int = 2) -> list[str]:
    """A chat whose customer becomes known at message ``at``."""
    memories = services.memories
    session = memories.session_start("bot")
    return [
        memories.store(StoreRequest(agent_id="bot", content=text, session_id=session.id,
                                    customer_id=customer if i == at else None)).id
        for i, text in enumerate(lines)
    ]


def top_ids(services, query: str, k: int = 10) -> list[str]:
    return [h.memory.id for h in services.recall.recall("bot", query, k)]


def test_a_query_naming_any_alias_ranks_all_the_customers_memories_first(services):
    jane = chat(services)[1]
    handle_only = store_chat(services, "cust-3300", [
        "user: my parcel was damaged in transit",
        "assistant: I can help. What is your user id?",
        "user: firstname_lastname_1177",
        "assistant: Thanks, a replacement is on its way.",
    ])
    omar = store_chat(services, "cust-2200", [
        "user: Hello, I'm Omar Haddad and my parcel never arrived either",
        "assistant: Let me check. Jane Doe from our team will follow up on order 4521.",
        "user: my e-mail is omar@example.com",
        "assistant: Found you. Your previous interactions were all about delivery.",
    ])
    for query in ("Jane Doe previous interactions", "jane.doe@example.com history", "jane_doe_6699 history",
                  "what did JANE DOE ask about?"):
        found = top_ids(services, query)
        assert set(found[: len(jane)]) == set(jane), query  # all hers, above Omar's that names her
        assert set(found[len(jane):]) <= set(handle_only + omar)
    hit = services.recall.recall("bot", "Jane Doe previous interactions", 1)[0]
    assert "about customer cust-1177 (name 'Jane Doe')" in hit.why
    # A name that only the handle spells.
    found = top_ids(services, "Firstname Lastname previous interactions")
    assert set(found[: len(handle_only)]) == set(handle_only)


def test_a_name_two_customers_share_resolves_to_both(services):
    first = store_chat(services, "cust-a", ["user: Hi, my name is Alex Kim", "user: my router keeps rebooting",
                                            "assistant: Resetting your line now."])
    second = store_chat(services, "cust-b", ["user: this is Alex Kim speaking", "user: where is my refund?",
                                             "assistant: Refund sent yesterday."])
    other = store_chat(services, "cust-c", ["user: I'm Kim Alexander", "user: router problems again",
                                            "assistant: Engineer booked."])
    hits = services.recall.recall("bot", "Alex Kim previous interactions", 10)
    assert {h.memory.id for h in hits[:6]} == set(first + second)
    assert {h.memory.id for h in hits[6:]} <= set(other)
    for h in hits[:6]:
        customer = "cust-a" if h.memory.id in first else "cust-b"
        assert f"about customer {customer} (name 'Alex Kim' matches 2 customers)" in h.why


def test_an_e_mail_of_initial_and_surname_finds_the_full_name(services):
    assert identity.email_aliases("aclarke68@example.com", "aclarke68@example.com")[1] == Alias(
        "initial", "a clarke", "A. Clarke")
    anna = store_chat(services, "cust-anna", ["user: hi, my order is late", "assistant: Your e-mail please?",
                                              "user: aclarke68@example.com", "assistant: Thanks, found you."])
    other = store_chat(services, "cust-bo", ["user: hi, my parcel is late", "assistant: Your e-mail please?",
                                             "user: bo.clarke@example.com", "assistant: Thanks, found you."])
    hits = services.recall.recall("bot", "Anna Clarke previous interactions", 8)
    assert {h.memory.id for h in hits[:4]} == set(anna)
    assert {h.memory.id for h in hits[4:]} <= set(other)
    assert "about customer cust-anna (name 'A. Clarke')" in hits[0].why


def test_a_customers_history_covers_their_conversations(services):
    # Three chats; the first says much more about parcels than the others.
    chats = [
        store_chat(services, "cust-7", ["user: my name is Lena Berg", "user: parcel lost", "user: parcel late",
                                        "user: parcel damaged", "user: parcel returned", "user: parcel again"], at=1),
        store_chat(services, "cust-7", ["user: hello, Lena Berg here", "user: change my address"], at=1),
        store_chat(services, "cust-7", ["user: it's Lena Berg again", "user: cancel my subscription"], at=1),
    ]
    hits = services.recall.recall("bot", "Lena Berg parcel history", 3)
    found = [next(i for i, chat in enumerate(chats) if h.memory.id in chat) for h in hits]
    assert sorted(found) == [0, 1, 2]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_conversations_whose_customer_was_never_given_are_found_by_what_they_gave(services):
    memories, graph = services.memories, services.graph

    def anonymous_chat(lines):
        session = memories.session_start("bot")
        return [memories.store(StoreRequest(agent_id="bot", content=t, session_id=session.id)).id for t in lines]

    named = anonymous_chat(["Customer: Hi, it's Rosa Diaz, rosa.d@example.com", "Customer: my parcel is late",
                            "Agent: It will arrive tomorrow."])
    # Another chat of hers gives only the e-mail: it shares it with the first.
    mailed = anonymous_chat(["Customer: rosa.d@example.com", "Customer: the parcel came broken",
                             "Agent: A replacement is on its way."])
    other = anonymous_chat(["Customer: Hello, Tom Hill here, tom@example.com", "Customer: change my address",
                            "Agent: Done."])
    hits = services.recall.recall("bot", "Rosa Diaz previous interactions", 10)
    assert {h.memory.id for h in hits[:6]} == set(named + mailed)
    assert {h.memory.id for h in hits[6:]} <= set(other)
    assert "in a conversation that gave name 'Rosa Diaz'" in hits[0].why
    # Forgetting the memory that gave the e-mail unlearns what only it said.
    memories.forget("bot", mailed[0])
    assert graph.alias_sessions("bot", ["email:rosa.d@example.com"]) == {
        "email:rosa.d@example.com": ("rosa.d@example.com", (memories.session_get(
            graph.get_memories("bot", [named[0]])[named[0]].session_id).id,))}


def test_aliases_learned_after_the_first_query_are_found(services):
    first = store_chat(services, "cust-ada", ["user: my name is Ada Park", "user: my router is down"], at=0)
    assert services.recall.recall("bot", "Ada Park previous interactions", 2)[0].memory.id in first
    later = store_chat(services, "cust-bo", ["user: my name is Bo Lind", "user: my modem is down"], at=0)
    assert {h.memory.id for h in services.recall.recall("bot", "Bo Lind previous interactions", 2)} == set(later)
