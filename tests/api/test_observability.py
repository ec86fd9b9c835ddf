"""/metrics after real traffic over HTTP, JSON logs, and request ids shared by logs and errors."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from casegraph.ops.logs import REQUEST_ID, JsonFormatter
from casegraph.ops.metrics import Metrics
from casegraph.services import Services
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import STORE_UNDER_TEST, LiveServer, make_settings

STORE = 'mutation { store(input: {agentId: "bot", content: "%s", tags: ["customer:jane-doe"]}) { id } }'
BATCH = """mutation ImportBatch($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }"""
RECALL = """query FindJane { recall(agentId: "bot", query: "Jane Doe order 4521", topK: 3) { memory { id } } }"""


def scrape(url: str, **kwargs) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from a real GET /metrics."""
    r = httpx.get(f"{url}/metrics", timeout=30, **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered_server(embedder, extractor, tmp_path):
    metrics = Metrics()
    settings = make_settings(tmp_path / "data")
    services = Services.open(settings, embedder=metrics.instrument(embedder), extractor=extractor)
    try:
        with LiveServer(services, settings, metrics=metrics) as server:
            yield server
    finally:
        services.close()


def test_metrics_show_operations_counts_and_errors_after_real_traffic(metered_server, caplog):
    server = metered_server
    caplog.set_level(logging.INFO, logger="casegraph.access")
    first = server.gql(STORE % "Order #4521 arrived damaged; refund issued.")["data"]["store"]["id"]
    server.gql(STORE % "Jane prefers email updates.")
    batch = [{"agentId": "bot", "content": f"Ticket T-10{i} about a late parcel"} for i in range(3)]
    body = httpx.post(
        f"{server.url}/graphql", json={"query": BATCH, "variables": {"is": batch}, "operationName": "ImportBatch"}
    ).json()
    assert len(body["data"]["storeBatch"]) == 3
    hits = server.gql(RECALL)["data"]["recall"]
    assert hits[0]["memory"]["id"] == first
    assert server.gql(f'mutation {{ forget(agentId: "bot", id: "{first}") }}')["data"]["forget"] is True
    # An expected error, sent with our own request id: the id comes back in the error...
    bad = httpx.post(
        f"{server.url}/graphql", json={"query": STORE % "  "}, headers={"X-Request-ID": "req-obs-1"}
    ).json()
    assert bad["errors"][0]["extensions"] == {"code": "CONTENT_EMPTY", "requestId": "req-obs-1"}
    assert server.gql("mutation { store(")["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"

    m = scrape(server.url)
    requests = "casegraph_graphql_requests_total"
    assert value(m, requests, operation="store", type="mutation", outcome="ok") == 2
    assert value(m, requests, operation="store", type="mutation", outcome="error") == 1
    assert value(m, requests, operation="ImportBatch", type="mutation", outcome="ok") == 1
    assert value(m, requests, operation="FindJane", type="query", outcome="ok") == 1
    assert value(m, requests, operation="forget", type="mutation", outcome="ok") == 1
    assert value(m, requests, operation="invalid", type="unknown", outcome="error") == 1
    assert value(m, "casegraph_graphql_request_duration_seconds_count", operation="store", type="mutation") == 3
    assert value(m, "casegraph_graphql_request_duration_seconds_count", operation="FindJane", type="query") == 1
    assert value(m, "casegraph_errors_total", code="CONTENT_EMPTY", operation="store") == 1
    assert value(m, "casegraph_errors_total", code="GRAPHQL_PARSE_FAILED", operation="invalid") == 1
    assert value(m, "casegraph_memories_stored_total") == 5
    assert value(m, "casegraph_memories_forgotten_total") == 1
    assert value(m, "casegraph_recalls_total") == 1
    assert value(m, "casegraph_recall_hits_sum") == len(hits)
    # Write-path embedding calls: one per store (1 text) and one for the batch (3 texts).
    assert value(m, "casegraph_embedding_batch_size_count") == 3
    assert value(m, "casegraph_embedding_batch_size_sum") == 5
    assert value(m, "casegraph_embedding_batch_size_bucket", le="1.0") == 2
    # State gauges, computed at scrape time: 5 stored - 1 forgotten.
    assert value(m, "casegraph_memories", agent_id="bot") == 4
    assert value(m, "casegraph_vector_index_vectors", agent_id="bot") == 4
    assert value(m, "casegraph_vector_index_memory_bytes") > 0
    # The embedded store is in the data directory; a FalkorDB store leaves it empty.
    if STORE_UNDER_TEST == "embedded":
        assert value(m, "casegraph_data_dir_bytes") > 0
    else:
        assert value(m, "casegraph_data_dir_bytes") == 0
    assert value(m, "casegraph_http_requests_total", route="/graphql", method="POST", status="200") == 7
    assert value(m, "process_resident_memory_bytes") > 0

    # ...and in the access log line of that request, which formats as one JSON object.
    records = [r for r in caplog.records if getattr(r, "requestId", None) == "req-obs-1"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["requestId"] == "req-obs-1" and entry["status"] == 200
    assert entry["operation"] == "store" and entry["path"] == "/graphql"


def test_metrics_need_the_api_key_when_one_is_set(live_server_factory):
    server = live_server_factory(api_key="metrics-key-123")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    m = scrape(server.url, headers={"Authorization": "Bearer metrics-key-123"})
    assert value(m, "casegraph_errors_total", code="UNAUTHENTICATED", operation="") == 1
    assert value(m, "casegraph_http_requests_total", route="/metrics", method="GET", status="401") == 1


def test_operation_names_are_bounded():
    metrics = Metrics()
    assert metrics.operation_label(None, ["store", "forget"]) == "forget+store"
    assert metrics.operation_label("Find Jane!", []) == "Find_Jane_"
    for i in range(200):
        metrics.operation_label(f"op{i}", [])
    assert metrics.operation_label("yet_another", []) == "_other"
    assert metrics.operation_label("op5", []) == "op5"  # already known names keep their label


def test_json_log_lines_carry_the_request_id_and_extras():
    record = logging.LogRecord("casegraph.x", logging.ERROR, __file__, 1, "failed %s", ("twice",), None)
    record.durationMs = 1.5
    token = REQUEST_ID.set("req-42")
    try:
        entry = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert entry["message"] == "failed twice" and entry["level"] == "ERROR"
    assert entry["requestId"] == "req-42" and entry["durationMs"] == 1.5
    assert entry["logger"] == "casegraph.x" and entry["time"].endswith("Z")
