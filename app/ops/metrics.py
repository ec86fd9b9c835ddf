"""Prometheus metrics: the instruments, the scrape-time gauges, and an embedder wrapper.

Nothing here imports the web stack: the API layer (app/api/observability.py) feeds the
request, operation and error instruments at the boundary, so domain code stays free of
metrics calls. Each app owns its own registry (several apps live in one test process).

    casegraph_graphql_requests_total{operation,type,outcome}     counter
    casegraph_graphql_request_duration_seconds{operation,type}   histogram
    casegraph_errors_total{code,operation}                       counter
    casegraph_memories_stored_total / _forgotten_total           counter
    casegraph_recalls_total                                      counter
    casegraph_recall_hits                                        histogram
    casegraph_embedding_batch_size / _duration_seconds           histogram
    casegraph_http_requests_total{route,method,status}           counter
    casegraph_http_request_duration_seconds{route}               histogram
    casegraph_memories{agent_id}                                 gauge, at scrape time
    casegraph_vector_index_vectors{agent_id}                     gauge, at scrape time
    casegraph_vector_index_memory_bytes                          gauge, at scrape time
    casegraph_data_dir_bytes                                     gauge, at scrape time
    casegraph_info{version,schema_version,embedding_model}       gauge
    process_* (RSS, CPU, open files)                             prometheus-client
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from casegraph import __version__
from casegraph.domain.embedder import Embedder
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("casegraph.metrics")

# The classic text format: every Prometheus version (and most other scrapers) reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Client-chosen operation names become label values: cap how many distinct ones we keep.
MAX_OPERATION_NAMES = 100
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_+]")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# The *_created series double every counter for little use.
disable_created_metrics()


class Metrics:
    """The registry and instruments of one app."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.graphql_requests = Counter(
            "casegraph_graphql_requests", "GraphQL operations answered.",
            ["operation", "type", "outcome"], registry=r,
        )
        self.graphql_duration = Histogram(
            "casegraph_graphql_request_duration_seconds", "GraphQL operation latency (parse to result).",
            ["operation", "type"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.errors = Counter(
            "casegraph_errors", "Errors returned to clients, by code (GraphQL extensions.code, 401s).",
            ["code", "operation"], registry=r,
        )
        self.stored = Counter("casegraph_memories_stored", "Memories stored (store and storeBatch).", registry=r)
        self.forgotten = Counter("casegraph_memories_forgotten", "Memories forgotten on request.", registry=r)
        self.recalls = Counter("casegraph_recalls", "Recall queries answered.", registry=r)
        self.recall_hits = Histogram(
            "casegraph_recall_hits", "Hits returned per recall.", buckets=_SIZE_BUCKETS, registry=r
        )
        self.embedding_batch = Histogram(
            "casegraph_embedding_batch_size", "Texts per embedding call of the write path.",
            buckets=_SIZE_BUCKETS, registry=r,
        )
        self.embedding_duration = Histogram(
            "casegraph_embedding_duration_seconds", "Time per embedding call of the write path.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.http_requests = Counter(
            "casegraph_http_requests", "HTTP requests answered.", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "casegraph_http_request_duration_seconds", "HTTP request latency.", ["route"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        ProcessCollector(registry=r)
        self._operation_names: set[str] = set()
        self._names_lock = threading.Lock()

    def operation_label(self, name: str | None, root_fields: Sequence[str]) -> str:
        """The operation's name, or its root fields when anonymous ("recall", "store+forget")."""
        label = _NAME_UNSAFE.sub("_", name)[:64] if name else "+".join(sorted(set(root_fields)))[:64]
        label = label or "unknown"
        with self._names_lock:
            if label not in self._operation_names:
                if len(self._operation_names) >= MAX_OPERATION_NAMES:
                    return "_other"
                self._operation_names.add(label)
        return label

    def watch(self, services: Callable[[], Any]) -> None:
        """Report the gauges of ``services()`` (None while starting) at scrape time."""
        self.registry.register(_StateCollector(services))

    def instrument(self, embedder: Embedder) -> Embedder:
        return InstrumentedEmbedder(embedder, self)

    def render(self) -> bytes:
        """The text exposition. Blocking (the scrape-time gauges read the graph)."""
        return generate_latest(self.registry)


class InstrumentedEmbedder:
    """An Embedder that records batch sizes and durations of ``embed`` calls."""

    def __init__(self, inner: Embedder, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.runtime = getattr(inner, "runtime", "torch")
        self.quantization = getattr(inner, "quantization", "fp32")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.metrics.embedding_duration.observe(time.perf_counter() - started)
        self.metrics.embedding_batch.observe(len(texts))
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)  # cached; not an embedding batch of the write path


class _StateCollector(Collector):
    """Gauges computed when Prometheus scrapes, from the open services."""

    def __init__(self, services: Callable[[], Any]) -> None:
        self.services = services

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        services = self.services()
        if services is None:
            return
        try:
            by_agent = services.graph.count_memories_by_agent()  # one aggregate query
            sizes = services.vectors.sizes()  # in memory, no I/O
            disk = sum(p.stat().st_size for p in services.settings.data_dir.rglob("*") if p.is_file())
            schema_version = services.graph.schema_version
        except Exception:  # a scrape must not fail the app; the next one will retry
            log.exception("could not compute the state metrics")
            return
        memories = GaugeMetricFamily("casegraph_memories", "Memories stored per agent.", labels=["agent_id"])
        for agent_id, count in sorted(by_agent.items()):
            memories.add_metric([agent_id], count)
        yield memories
        vectors = GaugeMetricFamily(
            "casegraph_vector_index_vectors", "Vectors in each agent's index.", labels=["agent_id"]
        )
        for agent_id, (count, _) in sorted(sizes.items()):
            vectors.add_metric([agent_id], count)
        yield vectors
        yield GaugeMetricFamily(
            "casegraph_vector_index_memory_bytes", "Memory held by all vector indexes.",
            value=sum(b for _, b in sizes.values()),
        )
        yield GaugeMetricFamily("casegraph_data_dir_bytes", "Size of the data directory on disk.", value=disk)
        info = GaugeMetricFamily(
            "casegraph_info", "CaseGraph build and data directory.",
            labels=["version", "schema_version", "embedding_model"],
        )
        info.add_metric([__version__, schema_version, services.embedder.model_id], 1)
        yield info
