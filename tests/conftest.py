"""Shared fixtures: the real embedding model and spaCy pipeline (loaded once), real
Kùzu databases in tmp_path, and a real uvicorn server on loopback for HTTP tests."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from casegraph.embedding.embedder import SentenceTransformerEmbedder  # noqa: E402
from casegraph.extractors import EntityExtractor  # noqa: E402
from casegraph.ops.settings import Settings  # noqa: E402
from casegraph.services import Services  # noqa: E402


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def extractor() -> EntityExtractor:
    return EntityExtractor()


# The backend the suite runs on: "embedded" (the default) or "falkordb" (a FalkorDB server
# this run starts; each test gets a namespace of its own). `make test` runs the suite on
# both: the second time with CASEGRAPH_TEST_STORE=falkordb, leaving out the tests marked
# embedded_only (the Kùzu, USearch and tantivy engine tests).
STORE_UNDER_TEST = os.environ.get("CASEGRAPH_TEST_STORE", "embedded")
_falkor: list = []


def falkor_server():
    """The run's FalkorDB server, started on first use (CASEGRAPH_TEST_STORE=falkordb)."""
    if not _falkor:
        import tempfile

        from tests.falkor_server import FalkorServer

        server = FalkorServer(Path(tempfile.mkdtemp(prefix="casegraph-falkor-")), appendfsync="everysec").start()
        # pytest loads this file as `conftest`, test modules import it as `tests.conftest`: two
        # copies, two lists, and pytest_sessionfinish sees only its own. At exit, either stops it.
        atexit.register(server.stop)
        _falkor.append(server)
    return _falkor[0]


# Data directory -> its FalkorDB namespace: services opened again on the same directory
# (a restart) find what the first ones stored, as they do on the embedded engine.
_namespaces: dict[Path, str] = {}


def test_store(data_dir: Path | None = None) -> str:
    """The store address a test opens: embedded, or on the run's server a namespace of
    ``data_dir``'s own (a new one when no directory is given)."""
    if STORE_UNDER_TEST == "falkordb":
        if data_dir is None:
            return falkor_server().namespace_url()
        key = Path(data_dir).resolve()
        if key not in _namespaces:
            _namespaces[key] = falkor_server().namespace_url()
        return _namespaces[key]
    return "embedded"


def make_settings(data_dir: Path, **overrides) -> Settings:
    # A small buffer pool unless a test asks for another.
    return Settings.from_env(
        {}, data_dir=data_dir, **{"buffer_pool_mb": 64, "store": test_store(data_dir), **overrides}
    )


def pytest_sessionfinish(session, exitstatus):
    for server in _falkor:
        server.stop()


@pytest.fixture
def open_services(embedder, extractor):
    """Open Services on a data directory; closes everything it opened at teardown."""
    opened: list[Services] = []

    def _open(data_dir: Path, **overrides) -> Services:
        services = Services.open(make_settings(data_dir, **overrides), embedder=embedder, extractor=extractor)
        opened.append(services)
        return services

    yield _open
    for s in opened:
        with contextlib.suppress(Exception):
            s.close()


@pytest.fixture
def services(open_services, tmp_path) -> Services:
    return open_services(tmp_path / "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app served by uvicorn in a thread, reached over real HTTP."""

    def __init__(self, services: Services, settings: Settings, **app_options) -> None:
        import uvicorn
        from casegraph.api.app import create_app

        self.services = services
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, services=services, **app_options),
            host="127.0.0.1", port=self.port, log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def gql(self, query: str, variables: dict | None = None, headers: dict | None = None) -> dict:
        r = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
            headers=headers or {}, timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def live_server(open_services, tmp_path) -> Iterator[LiveServer]:
    services = open_services(tmp_path / "data")
    with LiveServer(services, services.settings) as server:
        yield server


@pytest.fixture
def live_server_factory(open_services, tmp_path):
    started: list[LiveServer] = []

    def _start(**overrides) -> LiveServer:
        services = open_services(tmp_path / f"data{len(started)}", **overrides)
        server = LiveServer(services, services.settings).__enter__()
        started.append(server)
        return server

    yield _start
    for s in started:
        s.__exit__(None, None, None)


# Each folder of tests/ is a marker, so a quick run picks a layer: `pytest -m unit` (pure
# logic, seconds), `-m "not e2e"`, or a folder path.
LAYERS = ("unit", "storage", "domain", "embedding", "api", "e2e")


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason="a test of the embedded engine (CASEGRAPH_TEST_STORE=falkordb)")
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(tests_dir)
        if len(rel.parts) > 1 and rel.parts[0] in LAYERS:
            item.add_marker(rel.parts[0])
        if STORE_UNDER_TEST != "embedded" and item.get_closest_marker("embedded_only"):
            item.add_marker(skip)
