"""Two tenants, random operations (hypothesis), one real server: nothing ever crosses.

Each tenant holds keys scoped to its own agent id (read, write, admin) and stores
memories whose text carries its own marker word. Both use the same customer ids and
order numbers, so a graph traversal that ignored the tenant would find the other's
nodes. After every step: no response to one tenant holds the other's marker or memory
ids; every memory, session and customer in a response belongs to the caller; and the
graph holds exactly the memories the model says each tenant has, so no write or delete
ever reached the other tenant. ``CASEGRAPH_TENANCY_EXAMPLES`` (default 12) runs longer.
"""

from __future__ import annotations

import json
import os

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from app.keys import KeyStore

MARKS = {"a": "alphamark", "b": "bravomark"}
ROLES = ("read", "write", "admin")
NEED = {"read": 1, "write": 2, "admin": 3}
CUSTOMERS = ("jane-doe", "bob-stone", "carol-white")
ORDERS = ("4521", "7788")
WORDS = ("refund", "damaged parcel", "router reset", "invoice", "order 4521", "Jane Doe", "ticket T-77")
NESTED = (
    "query($a: String!, $c: String!) { customer(agentId: $a, id: $c) { id agentId "
    "memories(limit: 10000) { id agentId content customer { id agentId } } "
    "orders { id memories { id agentId content } } tickets { id } "
    "sessions { id agentId customerId memories { id agentId content } customer { id agentId memories { id agentId } } } } }"
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
    server = live_server_factory()
    key_store = KeyStore(server.services.settings.keys_path)
    key_store.create("operator", "admin", ["*"])  # from now on every request needs a key
    api = Api(server.url)
    graph = server.services.graph
    counter = {"n": 0, "requests": 0, "examples": 0, "memories": 0}

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

        @rule(tenant=st.sampled_from("ab"), to=st.sampled_from("ab"), role=st.sampled_from(ROLES),
              customer=st.sampled_from(CUSTOMERS), order=st.sampled_from(ORDERS), n=st.integers(1, 3),
              with_session=st.booleans(), data=st.data())
        def store(self, tenant, to, role, customer, order, n, with_session, data):
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
            mine = {m for m, about in self.memories[tenant].items() if customer in about}
            assert {m["id"] for m in found["memories"]} == mine
            for order in found["orders"]:
                assert {m["id"] for m in order["memories"]} <= set(self.memories[tenant])
            for s in found["sessions"]:
                assert s["id"] in self.sessions[tenant] and s["agentId"] == self.tenants[tenant][0]

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

        @invariant()
        def graph_holds_exactly_what_each_tenant_was_told(self):
            for t, (agent, _) in self.tenants.items():
                assert graph.count_memories(agent) == len(self.memories[t])

    examples = int(os.environ.get("CASEGRAPH_TENANCY_EXAMPLES", "12"))
    run_state_machine_as_test(
        Tenants,
        settings=settings(max_examples=examples, stateful_step_count=10, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    print(f"\ntenancy: {counter['examples']} examples, {counter['requests']} requests, "
          f"{graph.count_memories()} memories stored at the end")
    assert counter["requests"] > examples * 5
