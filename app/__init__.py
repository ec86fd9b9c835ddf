"""CaseGraph: memory for customer-support bots.

Installed under one import name, ``casegraph`` (the repository keeps the layout the design
fixed: ``app/`` is this package, ``extractors/`` and ``graph_schema/`` are mapped to
``casegraph.extractors`` and ``casegraph.graph_schema``).

The data flows one way, and the packages show the layers:

    store -> extract -> embed -> graph + vectors + keywords -> recall -> rank -> API

    api/        GraphQL, REST (the Dakera wire), the playground, ASGI middleware
    domain/     the write path, recall, ranking, hygiene, identity, threads, tickets
    storage/    the engines behind the domain: storage/embedded/ (Kùzu + USearch + tantivy)
    embedding/  the text-embedding runtimes (torch, ONNX) behind the ``Embedder`` protocol
    ops/        settings, logs, metrics, keys, backup, the command line, import/export
    extractors  spaCy pipeline and identifier rules (casegraph.extractors)
    graph_schema  Cypher DDL and the recorded migrations (casegraph.graph_schema)

``services.py`` wires one storage engine, the embedder and the domain services together;
``errors.py`` is the exception tree every layer raises; ``client/`` is the Python client,
sync and async (``from casegraph import CaseGraphClient, AsyncCaseGraphClient``), which needs
only httpx and is also its own distribution, ``casegraph-client`` (clients/python).
"""

__version__ = "0.1.0"

import os as _os

# Before anything loads torch (spaCy's thinc imports it too): OpenMP threads that wait
# should sleep, not spin. CaseGraph runs spaCy, Kùzu and the event loop beside the model on
# a few cores. With the default (spin), on 2 cores a query embedding that overlapped Kùzu's
# keyword/graph queries took 50-400 ms instead of ~10 ms, and 8 clients' single stores
# used ~180 ms of CPU each instead of ~30 ms. Set OMP_WAIT_POLICY to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["AsyncCaseGraphClient", "CaseGraphClient", "CaseGraphClientError", "__version__"]


def __getattr__(name: str):
    # The client is imported on first use, so ``import casegraph.x`` stays free of httpx.
    if name in ("AsyncCaseGraphClient", "CaseGraphClient", "CaseGraphClientError"):
        from casegraph import client

        return getattr(client, name)
    raise AttributeError(f"module 'casegraph' has no attribute {name!r}")
