"""Bad input never hurts: thousands of random and malformed requests against a real
server (uvicorn over HTTP, the real app, Kùzu, model and spaCy).

Requests: broken and wrongly typed JSON, odd content types, token soup, query bombs,
oversized bodies, garbage headers, and well-formed operations whose every string field
carries huge strings, odd Unicode (lone surrogates, NUL, RTL, zero-width) or
injection-shaped text (Cypher, SQL, GraphQL, JSON, HTML). Proven: no 5xx, the server
stays healthy, a rejected request changes nothing (graph fingerprint before/after), and
at the end the stored data is exactly the seed plus what accepted requests were told.
CI sends 1,500 requests; ``CASEGRAPH_FUZZ_CASES`` sends more, ``CASEGRAPH_FUZZ_SEED`` replays.
"""

from __future__ import annotations

import json
import os
import random
import string
import time

import httpx
from casegraph.storage.rows import ATTR_COLUMNS, attrs_from_row

KEY = "fuzz-admin-key-1"
AGENTS = ("fuzz-bot", "fuzz-2")
CASES = int(os.environ.get("CASEGRAPH_FUZZ_CASES", "1500"))
SEED_IDS: list[str] = []  # the seed agent's memory and session ids, filled in by the test

INJECTIONS = (
    "' OR 1=1 --", '" OR ""="', "'; DROP TABLE Memory; --", "MATCH (n) DETACH DELETE n",
    "}) MATCH (n) DETACH DELETE n //", "') RETURN m //", "$a", "$ids", "`Order`", "`", "``) DETACH DELETE m",
    "CALL QUERY_FTS_INDEX('Memory', 'memory_fts', 'x')", "CALL DROP_FTS_INDEX('Memory','memory_fts')",
    "LOAD EXTENSION fts", "CHECKPOINT", "COPY Memory FROM '/etc/passwd'", "EXPORT DATABASE '/tmp/x'",
    "bot|jane-doe", "fuzz-bot|x", "*", "%", "\\", "\\u0000", "{{7*7}}", "${jndi:ldap://x}",
    "<script>alert(1)</script>", "../../etc/passwd", "query { __schema { types { name } } }",
    'mutation { forgetCustomer(agentId: "seed-bot", customerId: "jane-doe") { memories } }',
    '{"$ne": null}', "null", "true", "[]", "{}", "NaN", "-0", "1e309",
)
ODD = (
    "\ud800", "a\udfffb", "\x00", "x\x00y", "\u202eevil", "\u200b\u200c\u200d", "e\u0301\u0301\u0301",
    "😀" * 50, "\uffff", "\U0010ffff", "\r\n\t", "ǅ", "ﷺ", "İstanbul", "\x7f\x1b[31m", " " * 300,
)
PLAIN = ("jane-doe", "Jane Doe", "order #4521", "T-1042", "refund", "hello", "", "   ", "customer:jane-doe")


def nasty_string(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(INJECTIONS)
    if roll < 0.55:
        return rng.choice(ODD) + rng.choice(PLAIN)
    if roll < 0.63:
        return rng.choice(string.printable) * rng.choice((2_001, 20_001, 120_000))  # over the limits
    if roll < 0.75:
        return "".join(chr(rng.randrange(1, 0x2FFFF)) for _ in range(rng.randint(1, 60)))
    if roll < 0.9:
        return rng.choice(PLAIN)
    return rng.choice((None, 0, -1, 3.5, True, [], {}, ["x"], {"a": 1}, 2**70))  # a wrong type


def value(rng: random.Random, kind: str) -> object:
    """A value for a field of ``kind``: mostly plausible, often nasty."""
    if rng.random() < 0.5:
        return nasty_string(rng)
    return {
        "agent": rng.choice(AGENTS), "content": f"fuzz note {rng.randint(0, 10**6)} about order #4521",
        # Real ids of the seed agent too: no fuzzed agent may reach them.
        "id": rng.choice(("00000000-0000-0000-0000-000000000000", "not-an-id", "1", *SEED_IDS)),
        "customer": rng.choice(("jane-doe", "nobody-xyz", "Bob Stone")),
        "float": rng.choice((0.0, 0.5, 1.0, -1.0, 1e308, 7)), "int": rng.choice((1, 5, 0, -5, 101, 10**9)),
        "tags": rng.choice((["support"], ["customer:jane-doe"], [], ["order:4521", "ticket:T-1"])),
        "date": rng.choice(("2024-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "yesterday")),
        "json": rng.choice(({"channel": "chat"}, {"deep": [[[[1]]]]}, "string", 5)),
    }[kind]


def store_input(rng: random.Random) -> dict:
    fields = {"agentId": "agent", "content": "content", "importance": "float", "tags": "tags",
              "customerId": "customer", "sessionId": "id", "memoryType": "content", "metadata": "json",
              "createdAt": "date", "ttlSeconds": "int"}
    item = {"agentId": value(rng, "agent"), "content": value(rng, "content")}
    for name in rng.sample(sorted(fields), rng.randint(0, 4)):
        item[name] = value(rng, fields[name])
    if rng.random() < 0.3 and "tags" in item and isinstance(item["tags"], list):
        item["tags"] = [nasty_string(rng) for _ in range(rng.randint(1, 3))]
    return item




def _customer_id_ok(text: str) -> bool:
    from casegraph.extractors import normalise_customer_id

    try:
        normalise_customer_id(text)
        return True
    except ValueError:
        return False


# Customer ids no store can create: malformed ones, and one no pool ever uses.
UNKNOWN_CUSTOMERS = ("ghost-customer-000", *(t for t in INJECTIONS + ODD if not _customer_id_ok(t)))

OPERATIONS = {
    "store": ("mutation($i: StoreMemoryInput!) { store(input: $i) { id content expiresAt } }", lambda r: {"i": store_input(r)}),
    "storeBatch": ("mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id content expiresAt } }",
                   lambda r: {"is": [store_input(r) for _ in range(r.randint(0, 4))]}),
    "recall": ("query($a: String!, $q: String!, $k: Int!, $f: RecallFilter) { recall(agentId: $a, query: $q, "
               "topK: $k, filter: $f) { score why memory { id content } } }",
               lambda r: {"a": value(r, "agent"), "q": value(r, "content"), "k": value(r, "int"),
                          "f": r.choice((None, {"customerId": value(r, "customer"), "tags": value(r, "tags"),
                                                "since": value(r, "date"), "minImportance": value(r, "float"),
                                                "sessionId": value(r, "id"), "memoryTypes": [value(r, "content")]}))}),
    "memory": ("query($a: String!, $id: ID!) { memory(agentId: $a, id: $id) { id content } }",
               lambda r: {"a": value(r, "agent"), "id": value(r, "id")}),
    "forget": ("mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }",
               lambda r: {"a": value(r, "agent"), "id": value(r, "id")}),
    "sessionStart": ("mutation($a: String!, $c: String, $m: JSON) { sessionStart(agentId: $a, customerId: $c, "
                     "metadata: $m) { id } }", lambda r: {"a": value(r, "agent"), "c": value(r, "customer"),
                                                          "m": value(r, "json")}),
    "sessionEnd": ("mutation($s: ID!, $x: String) { sessionEnd(sessionId: $s, summary: $x) { id } }",
                   lambda r: {"s": value(r, "id"), "x": value(r, "content")}),
    "sessions": ("query($a: String!, $l: Int!, $o: Int!) { sessions(agentId: $a, limit: $l, offset: $o) { id } }",
                 lambda r: {"a": value(r, "agent"), "l": value(r, "int"), "o": value(r, "int")}),
    "customer": ("query($a: String!, $c: String!) { customer(agentId: $a, id: $c) { id memories(limit: 5) "
                 "{ id content } orders { id memories { id } } sessions { id } } }",
                 lambda r: {"a": value(r, "agent"), "c": value(r, "customer")}),
    "exportCustomer": ("query($a: String!, $c: String!) { exportCustomer(agentId: $a, customerId: $c) }",
                       lambda r: {"a": value(r, "agent"), "c": value(r, "customer")}),
    "ticket": ("query($a: String!, $t: String!) { ticket(agentId: $a, id: $t) { id status memories { id } "
               "customers { id } related { ticket { id } } events { note } } }",
               lambda r: {"a": value(r, "agent"), "t": r.choice(("T-1042", "#1042", *INJECTIONS, *ODD))}),
    "tickets": ("query($a: String!, $s: TicketStatus, $l: Int!, $o: Int!) { tickets(agentId: $a, status: $s, "
                "limit: $l, offset: $o) { id } }",
                lambda r: {"a": value(r, "agent"), "s": r.choice((None, "OPEN", "open", "DROP", 5)),
                           "l": value(r, "int"), "o": value(r, "int")}),
    "path": ("query($a: String!, $f: ID!, $t: ID!, $h: Int!) { path(agentId: $a, from: $f, to: $t, maxHops: $h) "
             "{ nodes { id label } } }",
             lambda r: {"a": value(r, "agent"), "f": r.choice(("customer:jane-doe", "ticket:T-1042", *INJECTIONS)),
                        "t": r.choice(("order:4521", "memory:x", "", *ODD)), "h": value(r, "int")}),
    "graph": ("query($a: String!, $c: ID!, $d: Int!, $l: Int!) { graph(agentId: $a, around: $c, depth: $d, "
              "limit: $l) { nodes { id } edges { type } } }",
              lambda r: {"a": value(r, "agent"), "c": r.choice(("customer:jane-doe", "entity:x:y", *INJECTIONS)),
                         "d": value(r, "int"), "l": value(r, "int")}),
    "ticketInsights": ("query($a: String!, $k: String) { ticketInsights(agentId: $a) { byStatus { count } "
                       "topEntities(kind: $k) { key } } }", lambda r: {"a": value(r, "agent"), "k": value(r, "content")}),
    # Only ids that are malformed or name nobody: accepted erasures must remove nothing.
    "forgetCustomer": ("mutation($a: String!, $c: String!) { forgetCustomer(agentId: $a, customerId: $c) "
                       "{ memories sessions } }",
                       lambda r: {"a": value(r, "agent"), "c": r.choice(UNKNOWN_CUSTOMERS)}),
}
TOKENS = ("{", "}", "(", ")", "[", "]", ":", "!", "$", "...", "@", "=", ",", "query", "mutation", "fragment",
          "on", "recall", "store", "input", "agentId", "__schema", "__typename", '"x"', '"""', "1", "-1.5e9",
          "true", "null", "#", "\\", "\u00e9", "Memory", "subscription")


def make_case(rng: random.Random) -> tuple[str, dict]:
    """(kind, httpx request kwargs)."""
    roll = rng.random()
    auth = {"Authorization": f"Bearer {KEY}"}
    if roll < 0.06:  # the Dakera-compatible REST routes, same rules
        route, body = rng.choice((
            ("/v1/memory/store", lambda: {"agent_id": value(rng, "agent"), "content": value(rng, "content"),
                                          "importance": value(rng, "float"), "tags": value(rng, "tags")}),
            ("/v1/memories/store/batch", lambda: {"agent_id": value(rng, "agent"),
                                                  "memories": [{"content": value(rng, "content")}
                                                               for _ in range(rng.randint(0, 3))]}),
            ("/v1/memory/recall", lambda: {"agent_id": value(rng, "agent"), "query": value(rng, "content"),
                                           "top_k": value(rng, "int"), "session_id": value(rng, "id")}),
            ("/v1/memory/forget", lambda: {"agent_id": value(rng, "agent"), "memory_ids": [value(rng, "id")]}),
            ("/v1/sessions/start", lambda: {"agent_id": value(rng, "agent"), "customer_id": value(rng, "customer")}),
        ))
        return "rest", {"method": "POST", "url": route, "content": json.dumps(body()),
                        "headers": {**auth, "Content-Type": "application/json"}}
    if roll < 0.6:  # a real operation with fuzzed variables
        name = rng.choice(sorted(OPERATIONS))
        query, make = OPERATIONS[name]
        variables = make(rng)
        body = json.dumps({"query": query, "variables": variables})
        return name, {"method": "POST", "content": body, "headers": {**auth, "Content-Type": "application/json"}}
    if roll < 0.7:  # a payload pasted into a GraphQL string literal, escaped or not
        payload = str(nasty_string(rng))
        literal = json.dumps(payload) if rng.random() < 0.5 else f'"{payload}"'
        query = rng.choice((
            f'{{ recall(agentId: "fuzz-bot", query: {literal}) {{ score }} }}',
            f'mutation {{ store(input: {{agentId: "fuzz-bot", content: {literal}}}) {{ id content expiresAt }} }}',
            f"{{ customer(agentId: {literal}, id: {literal}) {{ id }} }}",
        ))
        kind = "store" if query.startswith("mutation") else "literal"
        return kind, post_json({"query": query}, auth)
    if roll < 0.78:  # token soup and query bombs
        choice = rng.random()
        if choice < 0.5:
            query = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 80)))
        elif choice < 0.7:
            query = "{ " + "customer(agentId: \"a\", id: \"b\") { sessions { " * 40 + "id" + " } }" * 80 + " }"
        elif choice < 0.85:
            query = "{ " + " ".join(f"a{i}: __typename" for i in range(rng.randint(31, 500))) + " }"
        else:
            query = "{ " + "__typename " * rng.randint(5_001, 9_000) + "}"
        return "soup", post_json({"query": query}, auth)
    if roll < 0.88:  # broken bodies and wrong types
        body = rng.choice((
            b"", b"{", b"null", b"[]", b"[{}]", b'{"query": 5}', b'{"query": null}', b'{"query": ["x"]}',
            b'{"query": "{ __typename }", "variables": "x"}', b'{"query": "{ __typename }", "variables": [1]}',
            b'{"query": "{ __typename }", "operationName": 7}', b"\xff\xfe\x00garbage", b"[" * 5000 + b"]" * 5000,
            b'{"query": "' + b"\\ud800" * 10 + b'"}', b'{"query": "{ __typename }", "extensions": {"persistedQuery": 1}}',
            json.dumps({"query": "{ __typename }", "variables": {"a": 1e308 * 10}}).encode(),
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))),
        ))
        ctype = rng.choice(("application/json", "text/plain", "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=xyz", "application/graphql", ""))
        return "broken", {"method": "POST", "content": body, "headers": {**auth, "Content-Type": ctype}}
    if roll < 0.93:  # GET, including mutations (refused over GET) and garbage parameters
        params = rng.choice((
            {"query": "{ __typename }"}, {"query": 'mutation { sessionStart(agentId: "fuzz-bot") { id } }'},
            {"query": str(nasty_string(rng))[:2000].encode("utf-8", "replace").decode()}, {"variables": "{"}, {"query": "{ __typename }", "variables": "[]"},
        ))
        return "get", {"method": "GET", "params": params, "headers": auth}
    if roll < 0.97:  # authentication garbage
        # Bytes: the client sends them as they are (latin-1 on the wire, like any header).
        header = rng.choice((b"", b"Bearer", b"Basic abc", f"Bearer {KEY}x".encode(), b"bearer " + b"k" * 5000,
                             b"Bearer cg_0123456789ab_" + b"x" * 43, b"Bearer \xff\xfe", f"Token {KEY}".encode(),
                             f"Bearer {KEY}\xe9".encode("latin-1")))
        return "auth", {"method": "POST", "content": json.dumps({"query": "{ __typename }"}),
                        "headers": {"Authorization": header, "X-Request-ID": rng.choice((b"\xc3\xafd", b"id " * 40 + b"x", b"<b>"))}}
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * 300_000 + b'"}'  # over max_body_bytes
    return "oversized", {"method": "POST", "content": big, "headers": {**auth, "Content-Type": "application/json"}}


def post_json(body: dict, headers: dict) -> dict:
    # json.dumps escapes lone surrogates ("\\ud800"), which the client's own encoder refuses.
    return {"method": "POST", "content": json.dumps(body), "headers": {**headers, "Content-Type": "application/json"}}


def fingerprint(graph) -> tuple:
    return (
        graph.read("MATCH (n) RETURN count(n)")[0][0],
        graph.read("MATCH ()-[r]->() RETURN count(r)")[0][0],
        graph.read("MATCH (s:Session) WHERE s.ended_at IS NOT NULL RETURN count(s)")[0][0],
    )


def rejected(response: httpx.Response) -> bool:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return True  # an error, or the playground page for a GET without a query
    body = response.json()
    if not isinstance(body, dict) or "errors" not in body and "data" not in body:
        return False  # a REST success
    data = body.get("data")
    return bool(body.get("errors")) and (not data or all(v is None for v in data.values()))


def seed(server) -> dict[str, str]:
    from casegraph.domain.models import StoreRequest

    memories = server.services.memories.store_batch([
        StoreRequest(agent_id="seed-bot", content=text, tags=("customer:jane-doe",))
        for text in ("Order #4521 arrived damaged; refunded", "Jane prefers email", "Ticket T-1042 escalated")
    ])
    return {m.id: m.content for m in memories}


def summary_memories(graph) -> dict:
    """Every agent's session-summary memories, by id."""
    found = {}
    for agent, ids in graph.all_memory_ids().items():
        found.update({i: m for i, m in graph.get_memories(agent, sorted(ids)).items() if m.kind == "summary"})
    return found


def test_fuzzed_requests_never_hurt(live_server_factory):
    # No background sweeps during the run: the fingerprints must only see our requests.
    server = live_server_factory(api_key=KEY, max_body_bytes=200_000, vector_save_interval_s=3600.0)
    graph = server.services.graph
    seeded = seed(server)
    SEED_IDS[:] = [*seeded, server.services.memories.session_start("seed-bot", "jane-doe").id]
    seed_hits = [i for i, _ in server.services.keywords.search("seed-bot", "refunded", 10)]
    rng_seed = int(os.environ.get("CASEGRAPH_FUZZ_SEED", time.time_ns() % 100_000))
    rng = random.Random(rng_seed)
    acked: dict[str, str] = {}  # memory id -> content the client was told
    expiring: set[str] = set()  # stored with a TTL: the sweeper may have removed them since
    forgotten: set[str] = set()
    ended: set[str] = set()  # sessions a client ended: each may now hold one summary memory
    statuses: dict[int, int] = {}
    kinds: dict[str, int] = {}
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for n in range(CASES):
            kind, request = make_case(rng)
            kinds[kind] = kinds.get(kind, 0) + 1
            before = fingerprint(graph)
            r = http.request(**{"url": "/graphql", **request})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            context = f"case {n} (seed {rng_seed}, {kind}): {r.status_code} {r.text[:300]}"
            assert r.status_code < 500, context
            if rejected(r):
                assert fingerprint(graph) == before, "a rejected request changed stored data: " + context
                continue
            data = r.json().get("data") or {}
            if kind == "rest":  # Dakera's answers: {"memory": {...}} and {"stored": [...]}
                data = r.json()
                for m in ([data["memory"]] if "memory" in data else []) + data.get("stored", []):
                    acked[m["id"]] = m["content"]
                    if m.get("expires_at"):
                        expiring.add(m["id"])
                continue
            for m in ([data.get("store")] if data.get("store") else []) + (data.get("storeBatch") or []):
                acked[m["id"]] = m["content"]
                if m["expiresAt"]:
                    expiring.add(m["id"])
            if data.get("sessionEnd"):
                ended.add(data["sessionEnd"]["id"])
            if data.get("forget"):
                forgotten.add(json.loads(request["content"])["variables"]["id"])
            if data.get("forgetCustomer"):
                assert data["forgetCustomer"] == {"memories": 0, "sessions": 0}, context
        assert http.get("/health").json()["status"] == "healthy"
        r = http.post("/graphql", json={"query": '{ recall(agentId: "seed-bot", query: "refund") { memory { id } } }'},
                      headers={"Authorization": f"Bearer {KEY}"})
        top = r.json()["data"]["recall"][0]["memory"]["id"]
    # The seed is untouched, and the fuzz agents hold exactly what clients were told.
    assert {i: m.content for i, m in graph.get_memories("seed-bot", list(seeded)).items()} == seeded
    summaries = summary_memories(graph)  # written by a client's sessionEnd, not by a store
    # Recall still finds the seed first, unless a client ended the seed's session with a
    # summary of its own (fuzzed text such as "refunded" can outrank the seed; counted below).
    assert top in seeded or (top in summaries and summaries[top].agent_id == "seed-bot"), top
    assert {m.metadata["summaryOf"] for m in summaries.values()} <= ended
    assert graph.count_memories("seed-bot") == 3 + sum(1 for m in summaries.values() if m.agent_id == "seed-bot")
    # (ids only: BM25 scores move as the corpus grows)
    assert [i for i, _ in server.services.keywords.search("seed-bot", "refunded", 10)] == seed_hits
    held = {}  # every agent's memories but the seed's (fuzzed agent ids such as "null" are valid)
    for agent, ids in graph.all_memory_ids().items():
        if agent != "seed-bot":
            held.update({i: m.content for i, m in graph.get_memories(agent, sorted(ids)).items() if i not in summaries})
    assert held.keys() <= acked.keys()
    assert {i: c for i, c in held.items()} == {i: acked[i] for i in held}
    assert {i for i in acked if i not in forgotten and i not in expiring} <= held.keys()
    # What recall ranks from (app/storage/embedded/attrs_cache.py) is what the graph holds.
    stored = {(r[0], r[1]): attrs_from_row(r[2:]) for r in graph.read(f"MATCH (m:Memory) RETURN m.agent_id, m.id, {ATTR_COLUMNS}")}
    for agent in {a for a, _ in stored}:
        cached, _ = graph._attrs_cache.get(agent, [i for a, i in stored if a == agent])
        assert cached == {i: stored[(agent, i)] for i in cached}
    elapsed = time.monotonic() - started
    print(f"\nfuzz (seed {rng_seed}): {CASES} requests in {elapsed:.0f}s, statuses {dict(sorted(statuses.items()))}, "
          f"kinds {dict(sorted(kinds.items()))}, {len(acked)} memories accepted, 0 5xx")
