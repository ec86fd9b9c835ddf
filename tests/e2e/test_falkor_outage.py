"""The FalkorDB server goes away under a running CaseGraph, then comes back: every request
meanwhile gets a clear, retryable refusal (HTTP 503, code STORE_UNAVAILABLE), nothing is
acknowledged that was not written, and the same process serves again once the server is
back, without a restart.

The test runs its own server, so it runs once, in the suite's first (embedded) pass.
"""

from __future__ import annotations

import time

import httpx
import pytest
from casegraph.errors import ConfigurationError

from tests.conftest import STORE_UNDER_TEST, LiveServer, free_port
from tests.falkor_server import FalkorServer

pytestmark = pytest.mark.skipif(
    STORE_UNDER_TEST != "embedded", reason="runs its own FalkorDB server: once, in the first pass"
)

STORE = "mutation($c: String!) { store(input: {agentId: \"outage\", content: $c}) { id } }"
RECALL = "{ recall(agentId: \"outage\", query: \"parcel\", topK: 5) { memory { id content } } }"


def test_a_store_server_outage_is_a_clear_retryable_refusal_and_service_resumes(open_services, tmp_path):
    falkor = FalkorServer(tmp_path / "falkor", appendfsync="always").start()
    try:
        services = open_services(tmp_path / "data", store=f"{falkor.url}/outage")
        with LiveServer(services, services.settings) as server:
            before = server.gql(STORE, {"c": "The parcel was stored before the outage."})["data"]["store"]["id"]

            falkor.kill()
            for attempt in (
                lambda: httpx.post(f"{server.url}/graphql", json={"query": STORE, "variables": {"c": "lost?"}}, timeout=60),
                lambda: httpx.post(f"{server.url}/graphql", json={"query": RECALL}, timeout=60),
                lambda: httpx.post(f"{server.url}/v1/memory/store",
                                   json={"agent_id": "outage", "content": "during the outage"}, timeout=60),
            ):
                r = attempt()
                assert r.status_code in (200, 503), r.text
                body = r.json()
                codes = {e["extensions"]["code"] for e in body.get("errors", [])} or {body.get("code")}
                assert codes == {"STORE_UNAVAILABLE"}, body
                assert r.status_code == 200 or r.headers.get("retry-after") == "1"
                assert not (body.get("data") or {}).get("store"), body  # nothing acknowledged

            falkor = FalkorServer(falkor.directory, port=falkor.port, appendfsync="always").start()
            deadline = time.monotonic() + 30
            while True:  # the client reconnects on its next call
                r = httpx.post(f"{server.url}/graphql", json={"query": STORE, "variables": {"c": "The parcel after."}},
                               timeout=60)
                if r.status_code == 200 and "errors" not in r.json() or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            after = r.json()["data"]["store"]["id"]
            found = {h["memory"]["id"] for h in server.gql(RECALL)["data"]["recall"]}
            assert {before, after} <= found
            assert not any("lost?" in h["memory"]["content"] or "during the outage" in h["memory"]["content"]
                           for h in server.gql(RECALL)["data"]["recall"])
    finally:
        falkor.stop()


def test_opening_a_store_on_a_server_that_is_not_there_is_a_configuration_error(embedder):
    from casegraph.storage.backend import open_backend

    url = f"falkordb://127.0.0.1:{free_port()}/nobody"
    with pytest.raises(ConfigurationError) as refused:
        open_backend(url, None, embedder)
    assert refused.value.code == "STORE_UNREACHABLE"
    assert "cannot reach the FalkorDB server at falkordb://127.0.0.1:" in refused.value.message
