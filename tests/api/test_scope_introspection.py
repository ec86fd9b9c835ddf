"""Every way in refuses another agent's key: generated from the live schema and routes.

Nothing here lists the API. The root Query and Mutation fields come from the running
server by introspection, the routes from the running Starlette app. Each root field that
names an agent (an ``agentId`` argument, or one inside an input) or an object by id, and
each route, is called over real HTTP with read, write and admin keys scoped to the
attacker's agent, in two ways:

- *the victim's agent*: ``agentId`` (and every id) names the victim and its real objects.
  The call must refuse: ``FORBIDDEN`` or a ``*_NOT_FOUND`` code;
- *the attacker's own agent, the victim's ids* (where the field also names objects): the
  call may succeed, on the attacker's own data only.

Either way the answer holds none of the victim's data (its marker word, its customer's
name, its memory and session ids, outside an error message that echoes what was sent),
and the victim's state (its memories, sessions, customer, tickets) is the same after
the call as before. Arguments are made up from the introspected types; a field or route
that cannot be called that way must be listed in ``NOT_GENERIC`` with the reason, so a
new one fails this test until it is either exercised or explained.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import httpx
import pytest
from casegraph.ops.keys import open_key_store

ATTACKER, VICTIM = "probe-a", "probe-b"
MARK = "zephyrvictim"  # in every victim memory, never sent by the attacker
NAME = "Quentin Marlowe"
CUSTOMER, TICKET, ORDER = "cust-9", "T-4242", "9911"
TEXT = "scopeprobe: refund for the cracked blender, order #9911"
ROLES = ("read", "write", "admin")

# Routes that show no agent's data, so any key (or none) may call them. Each is still
# called with every key, and must not show the victim's data.
PUBLIC = {
    "/health": "liveness: status and version",
    "/health/ready": "readiness: status, version and schema version",
    "/health/live": "liveness: status and version",
    "/playground-assets": "the GraphiQL playground's static files",
    "/graphql": "the GraphQL endpoint: each root field is exercised on its own below",
}
# Root fields or routes the test cannot call generically: name -> why. Keep it short: an
# entry must still exist in the live schema or app, or the test fails.
NOT_GENERIC: dict[str, str] = {}

INTROSPECT = """
query { __schema { queryType { name } mutationType { name } types { name kind
  fields { name args { name defaultValue type { ...T } } type { ...T } }
  inputFields { name defaultValue type { ...T } } enumValues { name } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
"""


class CannotSynthesise(Exception):
    pass


# -- the schema, as introspection tells it ------------------------------------------------
def named(t: dict) -> dict:
    while t.get("ofType"):
        t = t["ofType"]
    return t


def render(t: dict) -> str:
    if t["kind"] == "NON_NULL":
        return render(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return f"[{render(t['ofType'])}]"
    return t["name"]


def id_kind(name: str) -> str | None:
    """The kind of object an argument named ``name`` identifies (sessionId -> session)."""
    if name.endswith("Id") and name != "agentId":
        return name[:-2].lower()
    return None


class Schema:
    def __init__(self, raw: dict) -> None:
        self.types = {t["name"]: t for t in raw["types"]}
        self.roots = {"query": raw["queryType"]["name"], "mutation": raw["mutationType"]["name"]}

    def carries_agent(self, t: dict, seen: frozenset = frozenset()) -> bool:
        n = named(t)
        if n["kind"] != "INPUT_OBJECT" or n["name"] in seen:
            return False
        fields = self.types[n["name"]]["inputFields"]
        return any(f["name"] == "agentId" or self.carries_agent(f["type"], seen | {n["name"]}) for f in fields)

    def names_agent(self, field: dict) -> bool:
        return any(a["name"] == "agentId" or self.carries_agent(a["type"]) for a in field["args"])

    @staticmethod
    def names_object(field: dict) -> bool:
        return any(a["name"] == "id" or id_kind(a["name"]) or named(a["type"])["name"] == "ID" for a in field["args"])

    def selection(self, type_name: str, depth: int) -> dict | None:
        """Every scalar field, and object fields without required arguments ``depth`` deep,
        as a tree {field: subtree or None}; None for a scalar."""
        t = self.types[type_name]
        if t["kind"] in ("SCALAR", "ENUM"):
            return None
        if t["kind"] in ("UNION", "INTERFACE"):
            return {"__typename": None}
        tree: dict = {}
        for f in t["fields"]:
            if any(a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None for a in f["args"]):
                continue
            inner = named(f["type"])
            if inner["kind"] in ("SCALAR", "ENUM"):
                tree[f["name"]] = None
            elif depth > 0:
                tree[f["name"]] = self.selection(inner["name"], depth - 1)
        return tree


def render_selection(tree: dict | None) -> str:
    if tree is None:
        return ""
    return "{ " + " ".join(f"{k} {render_selection(v)}".strip() for k, v in tree.items()) + " }" if tree \
        else "{ __typename }"


def prune(tree: dict | None, path: list[str]) -> None:
    """Drop the field at ``path`` (names below the root field) from the selection."""
    for name in path[:-1]:
        if not isinstance(tree, dict) or not isinstance(tree.get(name), dict):
            return
        tree = tree[name]
    if isinstance(tree, dict):
        tree.pop(path[-1], None)


# -- what a call is made of ---------------------------------------------------------------
@dataclasses.dataclass
class Victim:
    agent: str
    memories: list[str]
    sessions: list[str]

    def ids(self) -> dict[str, str]:
        return {"session": self.sessions[0], "memory": self.memories[0], "customer": CUSTOMER,
                "ticket": TICKET, "order": ORDER}

    def refs(self) -> list[str]:
        # An ID that is none of the above is a graph reference (kind:key), e.g. path(from:, to:).
        return [f"customer:{CUSTOMER}", f"ticket:{TICKET}", f"order:{ORDER}"]


class Arguments:
    """Values for one call: ``agent`` for every agentId, the victim's ids for every id."""

    def __init__(self, schema: Schema, victim: Victim, agent: str, field: dict, id_of: str | None = None) -> None:
        self.schema, self.victim, self.agent, self.field = schema, victim, agent, field
        self.id_of = id_of  # the kind of object a bare ``id`` names, when the field does not say
        self.refs = iter(victim.refs())

    @staticmethod
    def id_kinds(field: dict, victim: Victim) -> list[str | None]:
        """The kinds to try for a bare ``id``: the field's return type (memory(id:) -> memory),
        else each kind of the victim's objects in turn (forget(id:) returns a Boolean)."""
        if not any(a["name"] == "id" for a in field["args"]):
            return [None]
        kind = named(field["type"])["name"].lower()
        return [kind] if kind in victim.ids() else list(victim.ids())

    def of_id(self, name: str, type_name: str) -> Any:
        kind = id_kind(name)
        if name == "id":
            kind = self.id_of or named(self.field["type"])["name"].lower()
        if kind is not None:
            if kind not in self.victim.ids():
                raise CannotSynthesise(f"no victim object of kind {kind!r} for {name}")
            return self.victim.ids()[kind]
        if type_name == "ID":
            return next(self.refs)
        return None

    def value(self, name: str, t: dict) -> Any:
        if t["kind"] == "NON_NULL":
            return self.value(name, t["ofType"])
        if t["kind"] == "LIST":
            return [self.value(name, t["ofType"])]
        if name == "agentId":
            return self.agent
        found = self.of_id(name, t["name"])
        if found is not None:
            return found
        info = self.schema.types[t["name"]]
        if info["kind"] == "ENUM":
            return info["enumValues"][-1]["name"]  # the last: not a default, so a change shows
        if info["kind"] == "INPUT_OBJECT":
            return {f["name"]: self.value(f["name"], f["type"]) for f in info["inputFields"] if self.wanted(f)}
        scalars = {"String": TEXT, "Int": 1, "Float": 0.9, "Boolean": True, "JSON": {"scopeprobe": True},
                   "DateTime": "2026-01-01T00:00:00+00:00"}
        if t["name"] not in scalars:
            raise CannotSynthesise(f"no value for {name}: {t['name']}")
        return scalars[t["name"]]

    def wanted(self, arg: dict) -> bool:
        """Required arguments, and optional ones that name an agent or an object."""
        required = arg["type"]["kind"] == "NON_NULL" and arg["defaultValue"] is None
        return (required or arg["name"] in ("agentId", "id") or id_kind(arg["name"]) is not None
                or named(arg["type"])["name"] == "ID" or self.schema.carries_agent(arg["type"]))

    def call(self, operation: str) -> Call:
        args = [a for a in self.field["args"] if self.wanted(a)]
        variables = {f"v{i}": self.value(a["name"], a["type"]) for i, a in enumerate(args)}
        declared = ", ".join(f"$v{i}: {render(a['type'])}" for i, a in enumerate(args))
        passed = ", ".join(f"{a['name']}: $v{i}" for i, a in enumerate(args))
        head = f"{operation}{f'({declared})' if declared else ''} {{ {self.field['name']}{f'({passed})' if passed else ''}"
        return Call(self.field["name"], head, variables, self.schema.selection(named(self.field["type"])["name"], 3))


@dataclasses.dataclass
class Call:
    """One root field call. Its selection shrinks as nested fields fail: a nested check
    that refuses (and nulls its non-null parents) must not hide what the root field let out."""

    field: str
    head: str
    variables: dict
    tree: dict | None

    def query(self) -> str:
        return f"{self.head} {render_selection(self.tree)} }}"

    def post(self, http: httpx.Client, key: str, check: Any) -> dict:
        for _ in range(50):
            r = http.post("/graphql", json={"query": self.query(), "variables": self.variables},
                          headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
            body = r.json()
            check(json.loads(r.text))  # every answer, not only the last
            paths = [[p for p in e.get("path") or [] if isinstance(p, str)] for e in body.get("errors") or []]
            nested = [p[1:] for p in paths if len(p) > 1]
            if any(len(p) == 1 for p in paths) or not nested or self.tree is None:
                return body
            for p in nested:
                prune(self.tree, p)
        raise AssertionError(f"{self.field}: nested errors did not stop: {body}")


# -- the victim's data and state ----------------------------------------------------------
def seed(server, operator: str) -> tuple[Victim, Victim]:
    def gql(query: str, variables: dict) -> dict:
        body = server.gql(query, variables, headers={"Authorization": f"Bearer {operator}"})
        assert "errors" not in body, body
        return body["data"]

    made = {}
    for agent, words, customer, ticket in ((VICTIM, f"{MARK}: {NAME} says", CUSTOMER, TICKET),
                                           (ATTACKER, "attacker's own note:", "cust-a1", "T-5151")):
        sessions = [gql("mutation($a: String!, $c: String) { sessionStart(agentId: $a, customerId: $c) { id } }",
                        {"a": agent, "c": customer})["sessionStart"]["id"] for _ in range(2)]
        inputs = [
            {"agentId": agent, "content": f"{words} the blender from order #{ORDER} arrived cracked",
             "customerId": customer, "sessionId": sessions[0], "tags": [f"order:{ORDER}", f"ticket:{ticket}"]},
            {"agentId": agent, "content": f"{words} a refund of 80 EUR was approved for order #{ORDER}",
             "customerId": customer, "ticketId": ticket, "importance": 0.9},
            {"agentId": agent, "content": f"{words} the courier lost parcel 7781 on the way", "sessionId": sessions[1]},
        ]
        stored = gql("mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }", {"is": inputs})
        made[agent] = Victim(agent, [m["id"] for m in stored["storeBatch"]], sessions)
    return made[VICTIM], made[ATTACKER]


def state_of(services, victim: Victim) -> str:
    """Everything of the victim's a call could change, as one comparable string."""
    exported = services.customer_data.export_customer(victim.agent, CUSTOMER)
    exported.pop("exportedAt")
    memories = services.graph.get_memories(victim.agent, victim.memories)
    return json.dumps({
        "customer": exported,
        "memories": {k: dataclasses.asdict(m) for k, m in memories.items()},
        "sessions": [dataclasses.asdict(s) for s in services.memories.list_sessions(victim.agent, limit=1000)],
        "count": services.graph.count_memories(victim.agent),
        "tickets": [dataclasses.asdict(t) for t in services.tickets.list_tickets(victim.agent, limit=1000)],
    }, default=str, sort_keys=True)


def assert_no_victim_data(body: Any, victim: Victim, what: str) -> None:
    """None of the victim's data anywhere; an error message may echo an id that was sent."""
    messages = []
    if isinstance(body, dict):
        for e in body.get("errors") or []:
            messages.append(e.pop("message", ""))
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                messages.append(body.pop(key))
    text = json.dumps(body)
    for secret in (MARK, NAME, *victim.memories, *victim.sessions):
        assert secret not in text, f"{what}: the answer holds the victim's {secret!r}: {text[:600]}"
    for secret in (MARK, NAME):
        assert not any(secret in m for m in messages), f"{what}: an error message holds {secret!r}: {messages}"
    data = body.get("data") if isinstance(body, dict) and "data" in body else body
    assert VICTIM not in json.dumps(data), f"{what}: the answer names the victim's agent: {text[:600]}"


# -- the test -----------------------------------------------------------------------------
@pytest.fixture
def world(live_server_factory):
    server = live_server_factory()
    keys = open_key_store(server.services.settings)
    _, operator = keys.create("operator", "admin", ["*"])
    victim, attacker = seed(server, operator)
    attacker_keys = {role: keys.create(f"attacker-{role}", role, [ATTACKER])[1] for role in ROLES}
    return server, victim, attacker, attacker_keys


def test_every_field_and_route_refuses_another_agents_keys(world):
    server, victim, attacker, attacker_keys = world
    http = httpx.Client(base_url=server.url, timeout=60)
    raw = http.post("/graphql", json={"query": INTROSPECT}, headers={"Authorization": f"Bearer {attacker_keys['read']}"})
    schema = Schema(raw.json()["data"]["__schema"])
    routes = server.server.config.app.routes
    covered: dict[str, list[str]] = {"fields": [], "routes": []}
    calls_made = {"n": 0}
    unexplained = []
    before = state_of(server.services, victim)

    def unchanged(what: str) -> None:
        assert state_of(server.services, victim) == before, f"{what} changed the victim's data"

    # -- GraphQL: every root field --
    for operation, root in schema.roots.items():
        for field in schema.types[root]["fields"]:
            label = f"{operation} {field['name']}"
            if label in NOT_GENERIC:
                continue
            if not (schema.names_agent(field) or schema.names_object(field)):
                unexplained.append(f"{label}: names no agent and no object, so whose data it shows is unknown")
                continue
            ways = [("victim's agent", VICTIM)]
            if schema.names_agent(field) and schema.names_object(field):
                ways.append(("own agent, victim's ids", ATTACKER))
            try:
                calls = [(f"{way}{f', id of a {kind}' if kind else ''}",
                          Arguments(schema, victim, agent, field, kind).call(operation))
                         for way, agent in ways for kind in Arguments.id_kinds(field, victim)]
            except CannotSynthesise as exc:
                unexplained.append(f"{label}: {exc}")
                continue
            for role, key in attacker_keys.items():
                for way, call in calls:
                    what = f"{label} ({way}) with a {role} key scoped to {ATTACKER}"

                    def check(body: dict, what: str = what) -> None:
                        calls_made["n"] += 1
                        assert_no_victim_data(body, victim, what)
                        unchanged(what)

                    body = dataclasses.replace(call, tree=copy.deepcopy(call.tree)).post(http, key, check)
                    if way.startswith("victim's agent"):
                        # Refused at the root field itself, not by a nested field's check.
                        errors = [e for e in body.get("errors") or [] if e.get("path") == [field["name"]]]
                        code = errors[0].get("extensions", {}).get("code", "") if errors else "none"
                        assert code == "FORBIDDEN" or code.endswith("NOT_FOUND"), f"{what}: answered {code}: {body}"
                        assert (body.get("data") or {}).get(field["name"]) is None, f"{what}: {body}"
            covered["fields"].append(label)

    # -- every route of the live app --
    for route in routes:
        path = route.path
        if path in NOT_GENERIC or path == "/graphql":  # /graphql: field by field, above
            continue
        methods = sorted(set(getattr(route, "methods", None) or {"GET"}) - {"HEAD"})
        for method in methods:
            label = f"{method} {path}"
            for role, key in [*attacker_keys.items(), ("no", None)]:
                for way, agent in (("victim's agent", VICTIM), ("own agent, victim's ids", ATTACKER)):
                    what = f"{label} ({way}) with {role} key"
                    try:
                        url = fill_path(path, route, victim, agent, public=path in PUBLIC)
                    except CannotSynthesise as exc:
                        unexplained.append(f"{label}: {exc}")
                        break
                    headers = {"Authorization": f"Bearer {key}"} if key else {}
                    calls_made["n"] += 1
                    r = http.request(method, url, params={"agent_id": agent}, headers=headers,
                                     json=body_for(victim, agent) if method in ("POST", "PUT", "PATCH") else None)
                    if path in PUBLIC:
                        assert_no_victim_data(r.text, victim, what)
                        unchanged(what)
                        continue
                    if key is None:
                        assert r.status_code == 401, f"{what}: {r.status_code} {r.text[:300]}"
                    elif way == "victim's agent":
                        code = r.json().get("code", "")
                        assert r.status_code in (403, 404), f"{what}: {r.status_code} {r.text[:300]}"
                        assert code == "FORBIDDEN" or code.endswith("NOT_FOUND"), f"{what}: {r.text[:300]}"
                    assert_no_victim_data(r.json() if is_json(r) else r.text, victim, what)
                    unchanged(what)
            covered["routes"].append(label)

    live = {f"{op} {f['name']}" for op, root in schema.roots.items() for f in schema.types[root]["fields"]}
    live |= {route.path for route in routes}
    stale = sorted(set(NOT_GENERIC) - live)
    assert not stale, f"NOT_GENERIC names what no longer exists: {stale}"
    assert not unexplained, "call these generically or list them in NOT_GENERIC with the reason:\n" + "\n".join(
        unexplained)
    nested = nested_fields_naming_objects(schema)
    assert not nested, f"nested fields that name an object by id: exercise them here: {nested}"
    # Some of each: the test would pass vacuously on an empty schema.
    assert {"query customerContext", "mutation sessionEnd", "mutation storeBatch"} <= set(covered["fields"])
    assert {"POST /v1/memory/store", "GET /v1/sessions/{session_id}"} <= set(covered["routes"])
    print(f"\nscope: {len(covered['fields'])} root fields and {len(covered['routes'])} routes, {calls_made['n']} "
          f"calls with {ATTACKER}'s keys ({len(PUBLIC)} public):\n  " + "\n  ".join(covered["fields"] + covered["routes"]))


def fill_path(path: str, route: Any, victim: Victim, agent: str, public: bool) -> str:
    if not getattr(route, "endpoint", None):  # a mounted app: its root
        return path + "/"
    for name in getattr(route, "param_convertors", {}):
        if name == "agent_id":
            value = agent
        elif name.endswith("_id") and name[:-3] in victim.ids():
            value = victim.ids()[name[:-3]]
        elif public:
            value = "probe"
        else:
            raise CannotSynthesise(f"no value for the path parameter {name!r}")
        path = path.replace("{" + name + "}", value)
    return path


def body_for(victim: Victim, agent: str) -> dict:
    """One body for every route: the agent, and the victim's ids wherever one can go."""
    return {
        "agent_id": agent, "content": TEXT, "query": TEXT, "summary": TEXT, "importance": 0.9, "top_k": 20,
        "memory_ids": victim.memories, "session_id": victim.sessions[0], "customer_id": CUSTOMER,
        "tags": [f"ticket:{TICKET}"], "memories": [{"content": TEXT, "session_id": victim.sessions[0]}],
    }


def is_json(r: httpx.Response) -> bool:
    return r.headers.get("content-type", "").startswith("application/json")


def nested_fields_naming_objects(schema: Schema) -> list[str]:
    """Fields below the roots that take an id argument: reached only through a checked
    parent today; a new one must be called here before it is trusted."""
    found = []
    for t in schema.types.values():
        if t["kind"] != "OBJECT" or t["name"] in schema.roots.values() or t["name"].startswith("__"):
            continue
        for f in t["fields"] or []:
            if schema.names_object(f) or schema.names_agent(f):
                found.append(f"{t['name']}.{f['name']}")
    return found
