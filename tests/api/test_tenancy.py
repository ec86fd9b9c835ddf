"""Two tenants, random operations (hypothesis), one real server: nothing ever crosses.

Each tenant holds keys scoped to its own agent id (read, write, admin) and stores
memories whose text carries its own marker word. Both use the same customer ids and
order numbers, so a graph traversal that ignored the tenant would find the other's
nodes. After every step: no response to one tenant holds the other's marker or memory
ids; every memory, session and customer in a response belongs to the caller; and the
graph holds exactly the memories the model says each tenant has, so no write or delete
ever reached the other tenant. ``CASEGRAPH_TENANCY_EXAMPLES`` (default 15) runs longer.
"""

from __future__ import annotations

import json
import os

import httpx
from casegraph.ops.keys import open_key_store
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

MARKS = {"a": "alphamark", "b": "bravomark"}
ROLES = ("read", "write", "admin")
NEED = {"read": 1, "write": 2, "admin": 3}
CUSTOMERS = ("jane-doe", "bob-stone", "carol-white")
ORDERS = ("4521", "7788")
WORDS = ("refund", "damaged parcel", "router reset", "invoice", "order 4521", "Jane Doe", "ticket T-77")
NESTED = (
    "query($a: String!, $c: String!) { customer(agentId: $a, id: $c) { id agentId "
    "memories(limit: 1000) { id agentId content customer { id agentId } } "
    "orders { id memories { id agentId content } } tickets { id } "
    "sessions { id agentId customerId memories { id agentId content } customer { id agentId memories { id agentId } } } } }"
)


TICKET = (
    "query($a: String!) { ticket(agentId: $a, id: \"T-77\") { id status memories { id agentId content } "
    "customers { id memories(limit: 1000) { id agentId content } } orders { id memories { id content } } "
    "related { ticket { id memories { id content } } } } "
    "tickets(agentId: $a) { id memories { id agentId content } } }"
)
CONTEXT = (
    "query($a: String!, $c: String!) { customerContext(agentId: $a, customerId: $c, limit: 50) "
    "{ customer { id agentId } memories { memory { id agentId content } } "
    "openTickets { status latest { id content } ticket { id memories { id agentId content } } } } }"
)
WALK = (
    "query($a: String!, $c: ID!, $o: ID!) { graph(agentId: $a, around: $c, depth: 3) "
    "{ nodes { id kind key label properties } edges { source target type } } "
    "path(agentId: $a, from: $c, to: $o) { nodes { id kind key label } edges { type } } }"
)


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)

    def call(self, key: str, query: str, variables: dict) -> dict:
        r = self.http.post("/graphql", json={"query": query, "variables": variables},
                           headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return r.json()


def error_code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


def test_two_tenants_never_cross(live_server_factory, tmp_path):
    # A roomier buffer pool than the suite's 64 MB: shrinking a failure replays many examples.
    server = live_server_factory(buffer_pool_mb=256)
    key_store = open_key_store(server.services.settings)
    key_store.create("operator", "admin", ["*"])  # from now on every request needs a key
    api = Api(server.url)
    rest = httpx.Client(base_url=server.url, timeout=60)
    graph = server.services.graph
    counter = {"n": 0, "requests": 0, "examples": 0, "tickets seen": 0, "graphs walked": 0, "customers traversed": 0}

    class Tenants(RuleBasedStateMachine):
        """One example = two fresh agent ids with fresh keys, so examples replay alike."""

        def __init__(self) -> None:
            super().__init__()
            counter["examples"] += 1
            k = counter["examples"]
            self.tenants = {t: (f"tenant-{t}-{k}", MARKS[t]) for t in "ab"}
            self.keys = {(t, role): key_store.create(f"{t}{k}-{role}", role, [self.tenants[t][0]])[1]
                         for t in "ab" for role in ROLES}
            self.memories: dict[str, dict[str, set[str]]] = {t: {} for t in "ab"}  # id -> its customers
            self.sessions: dict[str, dict[str, str | None]] = {t: {} for t in "ab"}  # id -> customer

        @initialize()
        def seed_both_tenants(self):
            """Each tenant starts with a session and a memory per customer and order (same keys)."""
            for t in "ab":
                agent, mark = self.tenants[t]
                body = self.request(t, "write", "mutation($a: String!) { sessionStart(agentId: $a, "
                                    "customerId: \"jane-doe\") { id } }", {"a": agent})
                sid = body["data"]["sessionStart"]["id"]
                self.sessions[t][sid] = "jane-doe"
                inputs = [{"agentId": agent, "content": f"{mark} seed: {c} asked about order #{o}",
                           "customerId": c, "tags": [f"order:{o}", "ticket:T-77"]}
                          for c in CUSTOMERS for o in ORDERS]
                inputs.append({"agentId": agent, "content": f"{mark} seed: chat note", "sessionId": sid,
                               "tags": ["ticket:T-77"]})
                body = self.request(t, "write", "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) "
                                    "{ id customerId } }", {"is": inputs})
                for m, item in zip(body["data"]["storeBatch"], inputs, strict=True):
                    self.memories[t][m["id"]] = {item.get("customerId") or "jane-doe"}
                counter["n"] += len(inputs)

        def request(self, tenant: str, role: str, query: str, variables: dict) -> dict:
            counter["requests"] += 1
            body = api.call(self.keys[(tenant, role)], query, variables)
            text, data = json.dumps(body), json.dumps(body.get("data"))
            other = "b" if tenant == "a" else "a"
            # Error messages may echo what the caller sent (an id it guessed); data may not.
            assert MARKS[other] not in text, f"{tenant} saw {other}'s data: {text[:500]}"
            assert self.tenants[other][0] not in data, data[:500]
            for memory_id in self.memories[other]:
                assert memory_id not in data, f"{tenant} saw {other}'s memory {memory_id}"
            for session_id in self.sessions[other]:
                assert session_id not in data, f"{tenant} saw {other}'s session {session_id}"
            return body

        def expect(self, body: dict, tenant: str, role: str, target: str, need: str) -> bool:
            """True if the call should have succeeded; asserts FORBIDDEN otherwise."""
            allowed = target == tenant and NEED[role] >= NEED[need]
            if not allowed:
                assert error_code(body) == "FORBIDDEN", body
            return allowed

        # Stores lean to the caller's own agent and a writing role, so there is data to guard.
        @rule(tenant=st.sampled_from("ab"), cross=st.sampled_from((False, False, False, True)),
              role=st.sampled_from(("write", "admin", "admin", "read")),
              customer=st.sampled_from(CUSTOMERS), order=st.sampled_from(ORDERS), n=st.integers(1, 3),
              with_session=st.booleans(), data=st.data())
        def store(self, tenant, cross, role, customer, order, n, with_session, data):
            to = ("b" if tenant == "a" else "a") if cross else tenant
            agent, mark = self.tenants[to]
            session_id = None
            if with_session and self.sessions[tenant]:
                # Sometimes the other tenant's session: it must not exist for this agent.
                pool = sorted(self.sessions[tenant]) + sorted(self.sessions["b" if tenant == "a" else "a"])
                session_id = data.draw(st.sampled_from(pool))
            inputs = []
            for _ in range(n):
                counter["n"] += 1
                inputs.append({
                    "agentId": agent,
                    "content": f"{mark} note {counter['n']}: order #{order} refund for the damaged parcel",
                    "customerId": customer, "tags": [f"order:{order}", "ticket:T-77"],
                    **({"sessionId": session_id} if session_id else {}),
                })
            body = self.request(tenant, role, "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) "
                                "{ id agentId customerId } }", {"is": inputs})
            if not self.expect(body, tenant, role, to, "write"):
                return
            if session_id is not None and session_id not in self.sessions[tenant]:
                assert error_code(body) == "SESSION_NOT_FOUND", body
                return
            if session_id is not None and error_code(body) == "SESSION_ENDED":
                return
            assert error_code(body) is None, body
            about = {customer}
            if session_id is not None and self.sessions[tenant][session_id]:
                about.add(self.sessions[tenant][session_id])
            for m in body["data"]["storeBatch"]:
                assert m["agentId"] == agent
                self.memories[tenant][m["id"]] = about

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              words=st.sampled_from(WORDS), customer=st.none() | st.sampled_from(CUSTOMERS), data=st.data())
        def recall(self, tenant, to, role, words, customer, data):
            flt: dict = {"customerId": customer} if customer else {}
            if data.draw(st.booleans()) and self.sessions["b" if tenant == "a" else "a"]:
                flt["sessionId"] = data.draw(st.sampled_from(sorted(self.sessions["b" if tenant == "a" else "a"])))
            body = self.request(
                tenant, role,
                "query($a: String!, $q: String!, $f: RecallFilter) { recall(agentId: $a, query: $q, topK: 20, "
                "filter: $f) { memory { id agentId content customer { id agentId memories { id agentId } } "
                "orders { id memories { id agentId } } } why } }",
                {"a": self.tenants[to][0], "q": words, "f": flt or None},
            )
            if not self.expect(body, tenant, role, to, "read"):
                return
            assert error_code(body) is None, body
            for hit in body["data"]["recall"]:
                assert hit["memory"]["id"] in self.memories[tenant]
                if "sessionId" in flt:
                    raise AssertionError("another tenant's session filter matched something")

        @rule(tenant=st.sampled_from("ab"), role=st.sampled_from(ROLES), cross=st.booleans(), data=st.data())
        def poke_other_tenants_memory(self, tenant, role, cross, data):
            other = "b" if tenant == "a" else "a"
            if not self.memories[other]:
                return
            victim = data.draw(st.sampled_from(sorted(self.memories[other])))
            agent = self.tenants[other if cross else tenant][0]
            body = self.request(tenant, role, "query($a: String!, $id: ID!) { memory(agentId: $a, id: $id) "
                                "{ id content } }", {"a": agent, "id": victim})
            if cross:
                assert error_code(body) == "FORBIDDEN", body
            else:
                assert error_code(body) == "MEMORY_NOT_FOUND", body
            body = self.request(tenant, role, "mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }",
                                {"a": agent, "id": victim})
            expected = "FORBIDDEN" if cross or role == "read" else "MEMORY_NOT_FOUND"
            assert error_code(body) == expected, body

        @rule(tenant=st.sampled_from("ab"), role=st.sampled_from(ROLES), data=st.data())
        def forget_own(self, tenant, role, data):
            if not self.memories[tenant]:
                return
            victim = data.draw(st.sampled_from(sorted(self.memories[tenant])))
            body = self.request(tenant, role, "mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }",
                                {"a": self.tenants[tenant][0], "id": victim})
            if self.expect(body, tenant, role, tenant, "write"):
                assert body["data"]["forget"] is True, body
                del self.memories[tenant][victim]

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.none() | st.sampled_from(CUSTOMERS))
        def session_start(self, tenant, to, role, customer):
            body = self.request(tenant, role, "mutation($a: String!, $c: String) { sessionStart(agentId: $a, "
                                "customerId: $c) { id agentId } }", {"a": self.tenants[to][0], "c": customer})
            if self.expect(body, tenant, role, to, "write"):
                self.sessions[tenant][body["data"]["sessionStart"]["id"]] = customer

        @rule(tenant=st.sampled_from("ab"), role=st.sampled_from(ROLES), data=st.data())
        def poke_other_tenants_session(self, tenant, role, data):
            other = "b" if tenant == "a" else "a"
            if not self.sessions[other]:
                return
            sid = data.draw(st.sampled_from(sorted(self.sessions[other])))
            body = self.request(tenant, role, "query($a: String!, $id: ID!) { session(agentId: $a, id: $id) "
                                "{ id memories { id } } }", {"a": self.tenants[tenant][0], "id": sid})
            assert error_code(body) == "SESSION_NOT_FOUND", body
            body = self.request(tenant, role, "mutation($s: ID!) { sessionEnd(sessionId: $s, summary: \"x\") "
                                "{ id } }", {"s": sid})
            assert error_code(body) == "SESSION_NOT_FOUND", body
            assert graph.get_session(sid).summary != "x"

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS))
        def traverse_customer(self, tenant, to, role, customer):
            body = self.request(tenant, role, NESTED, {"a": self.tenants[to][0], "c": customer})
            if not self.expect(body, tenant, role, to, "read"):
                return
            if error_code(body) == "CUSTOMER_NOT_FOUND":
                return
            assert error_code(body) is None, body
            found = body["data"]["customer"]
            counter["customers traversed"] += 1
            mine = {m for m, about in self.memories[tenant].items() if customer in about}
            assert {m["id"] for m in found["memories"]} == mine
            for order in found["orders"]:
                assert {m["id"] for m in order["memories"]} <= set(self.memories[tenant])
            for s in found["sessions"]:
                assert s["id"] in self.sessions[tenant] and s["agentId"] == self.tenants[tenant][0]

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS))
        def customer_context(self, tenant, to, role, customer):
            body = self.request(tenant, role, CONTEXT, {"a": self.tenants[to][0], "c": customer})
            if not self.expect(body, tenant, role, to, "read"):
                return
            if error_code(body) == "CUSTOMER_NOT_FOUND":
                return
            assert error_code(body) is None, body
            found = body["data"]["customerContext"]
            assert {h["memory"]["id"] for h in found["memories"]} <= set(self.memories[tenant])
            for t in found["openTickets"]:
                assert {m["id"] for m in t["ticket"]["memories"]} <= set(self.memories[tenant])

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS))
        def export_customer(self, tenant, to, role, customer):
            body = self.request(tenant, role, "query($a: String!, $c: String!) { exportCustomer(agentId: $a, "
                                "customerId: $c) }", {"a": self.tenants[to][0], "c": customer})
            if self.expect(body, tenant, role, to, "admin"):
                exported = body["data"]["exportCustomer"]
                mine = {m for m, about in self.memories[tenant].items() if customer in about}
                assert {m["id"] for m in exported["memories"]} == mine

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS))
        def forget_customer(self, tenant, to, role, customer):
            body = self.request(tenant, role, "mutation($a: String!, $c: String!) { forgetCustomer(agentId: $a, "
                                "customerId: $c) { memories sessions } }", {"a": self.tenants[to][0], "c": customer})
            if not self.expect(body, tenant, role, to, "admin"):
                return
            gone = {m for m, about in self.memories[tenant].items() if customer in about}
            ended = {s for s, c in self.sessions[tenant].items() if c == customer}
            assert body["data"]["forgetCustomer"] == {"memories": len(gone), "sessions": len(ended)}
            for m in gone:
                del self.memories[tenant][m]
            for s in ended:
                del self.sessions[tenant][s]

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES))
        def traverse_ticket(self, tenant, to, role):
            # Both tenants tag their memories ticket:T-77: the same key, two tickets.
            body = self.request(tenant, role, TICKET, {"a": self.tenants[to][0]})
            if not self.expect(body, tenant, role, to, "read"):
                return
            if error_code(body) == "TICKET_NOT_FOUND":
                return
            assert error_code(body) is None, body
            mine = set(self.memories[tenant])
            t = body["data"]["ticket"]
            assert {m["id"] for m in t["memories"]} <= mine
            counter["tickets seen"] += 1
            for c in t["customers"]:
                assert {m["id"] for m in c["memories"]} <= mine
            for listed in body["data"]["tickets"]:
                assert {m["id"] for m in listed["memories"]} <= mine

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS), order=st.sampled_from(ORDERS))
        def walk_the_graph(self, tenant, to, role, customer, order):
            body = self.request(tenant, role, WALK, {"a": self.tenants[to][0], "c": f"customer:{customer}",
                                                    "o": f"order:{order}"})
            if not self.expect(body, tenant, role, to, "read"):
                return
            if body.get("errors"):
                assert {e["extensions"]["code"] for e in body["errors"]} <= {"NODE_NOT_FOUND", "NOT_FOUND"}, body
                return
            counter["graphs walked"] += 1
            for node in body["data"]["graph"]["nodes"] + (body["data"]["path"] or {"nodes": []})["nodes"]:
                if node["kind"] == "memory":
                    assert node["key"] in self.memories[tenant], node
                if node["kind"] == "session":
                    assert node["key"] in self.sessions[tenant], node

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES))
        def update_ticket(self, tenant, to, role):
            body = self.request(tenant, role, 'mutation($a: String!) { updateTicket(agentId: $a, id: "T-77", '
                                'status: PENDING) { id } }', {"a": self.tenants[to][0]})
            if self.expect(body, tenant, role, to, "write"):
                assert error_code(body) in (None, "TICKET_NOT_FOUND"), body

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES), data=st.data())
        def over_rest(self, tenant, to, role, data):
            """The Dakera-compatible REST routes make the same check."""
            agent = self.tenants[to][0]
            key = self.keys[(tenant, role)]
            allowed = to == tenant
            r = rest.post("/v1/memory/recall", json={"agent_id": agent, "query": "refund parcel", "top_k": 20},
                          headers={"Authorization": f"Bearer {key}"})
            self.check_rest(r, tenant, allowed)
            if allowed:
                assert {m["memory"]["id"] if "memory" in m else m["id"] for m in r.json()["memories"]} <= set(
                    self.memories[tenant])
            r = rest.get(f"/v1/agents/{agent}/sessions", headers={"Authorization": f"Bearer {key}"})
            self.check_rest(r, tenant, allowed)
            other = "b" if tenant == "a" else "a"
            if self.sessions[other]:
                sid = data.draw(st.sampled_from(sorted(self.sessions[other])))
                r = rest.get(f"/v1/sessions/{sid}/memories", headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 404 and r.json()["code"] == "SESSION_NOT_FOUND", r.text
            if self.memories[other]:
                victim = data.draw(st.sampled_from(sorted(self.memories[other])))
                r = rest.post("/v1/memory/forget", json={"agent_id": agent, "memory_ids": [victim]},
                              headers={"Authorization": f"Bearer {key}"})
                assert r.status_code in (403, 404), r.text

        def check_rest(self, r: httpx.Response, tenant: str, allowed: bool) -> None:
            counter["requests"] += 1
            other = "b" if tenant == "a" else "a"
            assert MARKS[other] not in r.text and self.tenants[other][0] not in r.text.replace(
                f"agent '{self.tenants[other][0]}'", "")
            if allowed:
                assert r.status_code == 200, r.text
            else:
                assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text

        @invariant()
        def graph_holds_exactly_what_each_tenant_was_told(self):
            for t, (agent, _) in self.tenants.items():
                assert graph.count_memories(agent) == len(self.memories[t])

    examples = int(os.environ.get("CASEGRAPH_TENANCY_EXAMPLES", "15"))
    run_state_machine_as_test(
        Tenants,
        settings=settings(max_examples=examples, stateful_step_count=25, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    print(f"\ntenancy: {counter['examples']} examples, {counter['requests']} requests (GraphQL + REST), "
          f"{counter['n']} memories sent, {counter['customers traversed']} customer / {counter['tickets seen']} "
          f"ticket traversals and {counter['graphs walked']} graph walks with data, 0 crossings")
    assert counter["requests"] > examples * 5
