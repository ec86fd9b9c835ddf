"""Two `casegraph serve` processes on one FalkorDB server share everything (issue 24).

Both serve ``CASEGRAPH_STORE=falkordb://.../NS`` from different data directories: what
one stores the other recalls, a session started on one is written to and ended on the
other, a memory forgotten on one is gone from the other, concurrent stores through both
are all there, and an API key created or revoked with `casegraph keys --store` counts on
both. The seed story (test_e2e_seed.py) and the Dakera SDK tests (tests/api/
test_dakera_sdk.py) run here unchanged, through a round-robin balancer in front of the
two processes: consecutive requests of one story go to different processes.

The FalkorDB server is the run's (tests/conftest.py starts it on first use), so these
tests run in the normal suite, whatever CASEGRAPH_TEST_STORE says.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from casegraph import CaseGraphClient, CaseGraphClientError
from casegraph.storage.backend import open_backend
from dakera import DakeraClient

from tests.api import test_dakera_sdk as dakera
from tests.conftest import falkor_server
from tests.e2e import test_e2e_seed as seed
from tests.procs import ROOT, ServerProcess

pytestmark = pytest.mark.e2e

# Headers that belong to one hop, not to the request or answer being passed on.
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
       "proxy-authorization", "proxy-connection", "content-length", "content-encoding"}


class Balancer:
    """Two processes sharing one namespace, behind a round-robin HTTP balancer.

    ``url`` is the balancer's (each request goes to the next process); ``processes`` are
    reachable directly; ``services`` is this test process's own view of the store (a
    third sharer), for the counts the Dakera tests check."""

    def __init__(self, store: str, root: Path, embedder) -> None:
        self.store, self.root = store, root
        self.generation = 0
        self.processes = self._start_processes()
        self.services = open_backend(store, root / "test-process", embedder)
        self.served: Counter[int] = Counter()
        self._turn = itertools.count()
        self._http = httpx.Client(timeout=300)
        balancer = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one client connection, many processes

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                i = next(balancer._turn) % len(balancer.processes)
                balancer.served[i] += 1
                r = balancer._http.request(
                    self.command, balancer.processes[i].url + self.path, content=body,
                    headers=[(k, v) for k, v in self.headers.items() if k.lower() not in HOP],
                )
                self.send_response(r.status_code)
                for k, v in r.headers.multi_items():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def _start_processes(self) -> list[ServerProcess]:
        """Two processes, each on a data directory of its own (new ones every generation)."""
        self.generation += 1
        env = {"CASEGRAPH_STORE": self.store}
        dirs = [self.root / f"gen{self.generation}-{name}" for name in "ab"]
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(lambda d: ServerProcess(d, env, log=d.with_suffix(".log")), dirs))

    def restart(self) -> None:
        """Both processes stopped; two new ones on NEW data directories serve the same data."""
        for p in self.processes:
            p.stop()
        self.processes = self._start_processes()

    def gql(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        r = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                       headers=headers or {}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._http.close()
        for p in self.processes:
            p.stop()
        self.services.close()


@pytest.fixture(scope="module")
def server(embedder, tmp_path_factory):
    balancer = Balancer(falkor_server().namespace_url("shared"), tmp_path_factory.mktemp("shared"), embedder)
    yield balancer
    balancer.stop()


@pytest.fixture(scope="module")
def client(server) -> DakeraClient:
    return DakeraClient(server.url, max_retries=1, timeout=60)


@pytest.fixture
def a(server) -> CaseGraphClient:
    return CaseGraphClient(server.processes[0].url, timeout=120)


@pytest.fixture
def b(server) -> CaseGraphClient:
    return CaseGraphClient(server.processes[1].url, timeout=120)


# -- what the processes share ------------------------------------------------------------------
def test_what_one_stores_the_other_recalls(server, a, b):
    agent = "shared-recall"
    on_a = a.store(agent_id=agent, content="Order #7001 arrived with a dented lid; a replacement is on its way.",
                   tags=["customer:ann-lee"])
    on_b = b.store(agent_id=agent, content="Ben's router keeps dropping wifi after the firmware update.",
                   tags=["customer:ben-ode"])
    assert [h["memory"]["id"] for h in b.recall(agent_id=agent, query="dented lid order 7001", top_k=1)] == [on_a["id"]]
    assert [h["memory"]["id"] for h in a.recall(agent_id=agent, query="router wifi firmware", top_k=1)] == [on_b["id"]]
    # The graph is shared too: B knows the order A's memory named, and its customer.
    customer = b.execute('{ customer(agentId: "shared-recall", id: "ann-lee") { orders { id } memories { id } } }')
    assert customer["customer"] == {"orders": [{"id": "7001"}], "memories": [{"id": on_a["id"]}]}
    # Nothing of the store is in either process's data directory.
    for p in server.processes:
        assert not (p.data_dir / "graph").exists() and not (p.data_dir / "keys.json").exists()


def test_a_session_started_on_one_is_written_to_and_ended_on_the_other(a, b):
    agent = "shared-session"
    session = a.session_start(agent_id=agent, customer_id="cara-moss")
    first = b.store(agent_id=agent, content="Cara's blender order #7102 has not shipped yet.", session_id=session["id"])
    second = a.store(agent_id=agent, content="Told Cara it ships tomorrow with express delivery.",
                     session_id=session["id"])
    ended = b.session_end(session_id=session["id"], summary="order #7102 ships tomorrow, express")
    assert ended["id"] == session["id"] and ended["endedAt"] is not None
    query = ('query($s: ID!) { session(agentId: "shared-session", id: $s) { endedAt memoryCount '
             'summaryMemory { id kind } } }')
    seen = a.execute(query, {"s": session["id"]})["session"]
    assert seen["endedAt"] == ended["endedAt"] and seen["memoryCount"] == 2
    assert seen["summaryMemory"]["kind"] == "summary"
    scoped = a.recall(agent_id=agent, query="blender order shipping", top_k=10, session_id=session["id"])
    assert {h["memory"]["id"] for h in scoped} == {first["id"], second["id"]}
    for c in (a, b):  # ended for both
        with pytest.raises(CaseGraphClientError) as err:
            c.store(agent_id=agent, content="late note", session_id=session["id"])
        assert err.value.code == "SESSION_ENDED"


def test_a_memory_forgotten_on_one_is_gone_from_the_other(a, b):
    agent = "shared-forget"
    kept = a.store(agent_id=agent, content="Dora asked for a copy of invoice 88-120.")
    gone = a.store(agent_id=agent, content="Dora's parcel 7203 was left with a neighbour.")
    assert b.recall(agent_id=agent, query="parcel left with a neighbour", top_k=1)[0]["memory"]["id"] == gone["id"]
    assert b.forget(agent_id=agent, memory_id=gone["id"]) is True
    for c in (a, b):
        with pytest.raises(CaseGraphClientError) as err:
            c.memory(agent_id=agent, memory_id=gone["id"])
        assert err.value.code == "MEMORY_NOT_FOUND"
        assert [h["memory"]["id"] for h in c.recall(agent_id=agent, query="parcel left with a neighbour",
                                                      top_k=5)] == [kept["id"]]
    with pytest.raises(CaseGraphClientError) as err:
        a.forget(agent_id=agent, memory_id=gone["id"])  # already gone, for A too
    assert err.value.code == "MEMORY_NOT_FOUND"


def test_200_concurrent_stores_through_both_are_all_there(server, a, b):
    agent = "shared-load"
    clients = [a, b]

    def store(i: int) -> str:
        return clients[i % 2].store(
            agent_id=agent, content=f"Customer cust-{i:03d} asked where the parcel for order #{20000 + i} is.",
            tags=[f"customer:cust-{i % 20:03d}"],
        )["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(store, range(200)))
    assert len(set(ids)) == 200
    assert server.services.graph.count_memories(agent) == 200 and server.services.vectors.count(agent) == 200
    for c in clients:
        for chunk in (ids[n:n + 25] for n in range(0, len(ids), 25)):  # 30 aliases at most
            fields = " ".join(f'm{n}: memory(agentId: "{agent}", id: "{i}") {{ id }}' for n, i in enumerate(chunk))
            got = c.execute("{ " + fields + " }")
            assert [got[f"m{n}"] and got[f"m{n}"]["id"] for n in range(len(chunk))] == chunk
    # Each one is found by what it says, through either process.
    assert b.recall(agent_id=agent, query="where is order 20117", top_k=1)[0]["memory"]["id"] == ids[117]
    assert a.recall(agent_id=agent, query="where is order 20042", top_k=1)[0]["memory"]["id"] == ids[42]


def casegraph(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEGRAPH_")}
    return subprocess.run([sys.executable, "-m", "casegraph.ops.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def test_a_key_made_with_the_cli_counts_on_both_processes(server):
    store = server.store
    recall = {"query": '{ recall(agentId: "shared-keys", query: "refund") { memory { id } } }'}
    made = casegraph("keys", "create", "--store", store, "--role", "read", "--agent", "shared-keys")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    try:
        for p in server.processes:  # from now on both want a key, and both take this one
            assert httpx.post(f"{p.url}/graphql", json=recall).status_code == 401
            ok = httpx.post(f"{p.url}/graphql", json=recall, headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200 and ok.json()["data"]["recall"] == []
        assert casegraph("keys", "revoke", "--store", store, key[3:15]).returncode == 0
        for p in server.processes:
            r = httpx.post(f"{p.url}/graphql", json=recall, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    finally:
        # Back to no keys at all (as deleting keys.json would), for the other tests here.
        namespace = store.rsplit("/", 1)[1]
        with falkor_server().client() as r:
            r.delete(f"{namespace}:keys")
            r.incr(f"{namespace}:keys:version")
    assert all(httpx.post(f"{p.url}/graphql", json=recall).status_code == 200 for p in server.processes)


# -- the Dakera SDK tests and the seed story, through the balancer (either process per request) --
test_support_bot_story = dakera.test_support_bot_story
test_chat_memory_session_helper = dakera.test_chat_memory_session_helper
test_store_memories_batch_of_500 = dakera.test_store_memories_batch_of_500
test_failed_batch_stores_none_of_its_items = dakera.test_failed_batch_stores_none_of_its_items
test_bad_input_raises_validation_error_and_changes_nothing = dakera.test_bad_input_raises_validation_error_and_changes_nothing
test_unknown_memory_or_session_raises_not_found = dakera.test_unknown_memory_or_session_raises_not_found
test_storing_into_an_ended_session_reports_its_state = dakera.test_storing_into_an_ended_session_reports_its_state
test_rest_and_graphql_recall_agree = dakera.test_rest_and_graphql_recall_agree
test_include_associated_returns_graph_linked_memories_with_depth = \
    dakera.test_include_associated_returns_graph_linked_memories_with_depth
test_unknown_and_unsupported_fields_become_warnings = dakera.test_unknown_and_unsupported_fields_become_warnings
test_http_refusals_are_dakera_json = dakera.test_http_refusals_are_dakera_json
test_support_bot_remembers_jane_across_sessions = seed.test_support_bot_remembers_jane_across_sessions
# Last: both processes are replaced by two on new data directories, and nothing is lost.
test_memories_survive_a_restart = seed.test_memories_survive_a_restart


def test_the_balancer_used_both_processes(server):
    assert len(server.served) == 2 and min(server.served.values()) > 50, server.served
