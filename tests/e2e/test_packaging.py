"""Packaging: the server installs under the one import name ``casegraph`` (no top-level
``app``, ``extractors``, ``graph_schema``), and the client distribution ``casegraph-client``
installs into a fresh virtual environment without torch and talks to a real server.

Offline: both wheels are built from a copy of this checkout with the running interpreter's
setuptools (``--no-build-isolation``); the client's dependencies (httpx and what it needs)
are wheels repacked from this interpreter's installed distributions, so pip resolves them
from a local folder that holds nothing else (``--no-index``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import sys_tags

from tests.conftest import LiveServer, make_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# What the builds read: the server's pyproject and the folders it maps; the client's folder.
SOURCES = ("pyproject.toml", "README.md", "app", "extractors", "graph_schema", "clients")
SERVER_ENGINES = ("torch", "sentence-transformers", "spacy", "kuzu", "usearch", "tantivy", "onnxruntime")

# Run with -I in the fresh venv: it stores and recalls through the module named by argv[2],
# sync and async, and reports what that environment holds.
CLIENT_SCRIPT = r'''
import asyncio, importlib, importlib.util, json, re, sys
from importlib.metadata import distributions

url, module_name = sys.argv[1], sys.argv[2]
module = importlib.import_module(module_name)
bot = "lean-bot-" + module_name
client = module.CaseGraphClient(url)
wrong = client.store(agent_id=bot, content="Order #8812 shipped to the wrong address; reshipment booked.",
                     tags=["customer:ann-lee"])
other = client.store(agent_id=bot, content="Ben asked how to pair his headphones over Bluetooth.")
hits = client.recall(agent_id=bot, query="order 8812 wrong address", top_k=2)

async def recall():
    async with module.AsyncCaseGraphClient(url) as aclient:
        return await aclient.recall(agent_id=bot, query="pairing bluetooth headphones", top_k=2)

async_hits = asyncio.run(recall())
client.forget(agent_id=bot, memory_id=other["id"])
try:
    client.memory(agent_id=bot, memory_id=other["id"])
    code = None
except module.CaseGraphClientError as err:
    code = err.code
print(json.dumps({
    "wrong": wrong["id"], "other": other["id"],
    "hits": [h["memory"]["id"] for h in hits], "async_hits": [h["memory"]["id"] for h in async_hits],
    "forgotten_code": code, "client_file": sys.modules[module.CaseGraphClient.__module__].__file__,
    "distributions": sorted(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in distributions()),
    "importable": {m: importlib.util.find_spec(m) is not None
                   for m in ("torch", "spacy", "kuzu", "sentence_transformers", "usearch", "app",
                             "extractors", "graph_schema", "casegraph", "casegraph_client")},
}))
'''


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def pip(*args: str | Path) -> str:
    return run(sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A clean copy of the build inputs: no build/ or egg-info left by an earlier build."""
    copy = tmp_path_factory.mktemp("checkout")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "dist", "*.egg-info")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            shutil.copy2(source, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheels(checkout, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    pip("wheel", checkout, "--no-deps", "--no-build-isolation", "--no-index", "-w", out)
    pip("wheel", checkout / "clients" / "python", "--no-deps", "--no-build-isolation", "--no-index", "-w", out)
    return {"server": one(out.glob("casegraph-*.whl")), "client": one(out.glob("casegraph_client-*.whl"))}


@pytest.fixture(scope="module")
def client_dependencies(wheels, tmp_path_factory) -> Path:
    """A folder of wheels of the client's dependencies, closed over theirs, and nothing else."""
    out = tmp_path_factory.mktemp("wheelhouse")
    with zipfile.ZipFile(wheels["client"]) as whl:
        meta = whl.read(next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    todo = [Requirement(line.split(":", 1)[1]) for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonical(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        assert name not in SERVER_ENGINES, f"the client would pull in {name}"
        seen.add(name)
        dist = metadata.distribution(req.name)
        repack(dist, out)
        todo.extend(Requirement(r) for r in dist.requires or [])
    return out


@pytest.fixture(scope="module")
def server(embedder, extractor, tmp_path_factory):
    from casegraph.services import Services

    services = Services.open(make_settings(tmp_path_factory.mktemp("packaging") / "data"),
                             embedder=embedder, extractor=extractor)
    with LiveServer(services, services.settings) as live:
        yield live
    services.close()


def test_the_server_wheel_installs_one_import_name(wheels):
    with zipfile.ZipFile(wheels["server"]) as whl:
        names = whl.namelist()
        top_level = whl.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert {n.split("/")[0] for n in names} == {"casegraph", "casegraph-0.1.0.dist-info"}
    assert top_level == ["casegraph"]
    # Every package of the checkout is in it (setuptools' list is explicit: a missing entry
    # would drop a package silently), and so are the data files the server reads.
    mapped = {"app": "casegraph", "extractors": "casegraph/extractors", "graph_schema": "casegraph/graph_schema"}
    for folder, target in mapped.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"{target}/{init.relative_to(ROOT / folder).as_posix()}" in names
    assert {"casegraph/client/clients.py", "casegraph/client/wire.py", "casegraph/api/schema.graphql",
            "casegraph/graph_schema/001_initial.cypher"} <= set(names)


def test_the_client_installs_without_the_server_and_talks_to_it(wheels, client_dependencies, server, tmp_path):
    venv = fresh_venv(tmp_path / "client-venv")
    pip("--python", venv, "install", "--no-index", "--find-links", client_dependencies,
        "--find-links", wheels["client"].parent, "casegraph-client")
    report = run_client(venv, server.url, "casegraph_client", tmp_path)
    # Exactly the client and the closure of its dependencies (httpx and what it needs).
    dependencies = {canonical(w.name.split("-")[0]) for w in client_dependencies.glob("*.whl")}
    assert "httpx" in dependencies
    assert set(report["distributions"]) == {"casegraph-client"} | dependencies
    assert not set(SERVER_ENGINES + ("casegraph",)) & dependencies
    assert report["importable"] == {
        "torch": False, "spacy": False, "kuzu": False, "sentence_transformers": False, "usearch": False,
        "app": False, "extractors": False, "graph_schema": False, "casegraph": False, "casegraph_client": True,
    }
    assert report["client_file"].startswith(str(venv))
    assert report["hits"][0] == report["wrong"] and report["async_hits"][0] == report["other"]
    assert report["forgotten_code"] == "MEMORY_NOT_FOUND"


def test_the_server_installs_no_top_level_app_and_exports_the_client(wheels, client_dependencies, server, tmp_path):
    venv = fresh_venv(tmp_path / "server-venv")
    # --no-deps: the engines (torch, Kùzu, spaCy...) are not what this checks; httpx is
    # installed from the same local folder so that the client can run.
    pip("--python", venv, "install", "--no-index", "--no-deps", wheels["server"])
    pip("--python", venv, "install", "--no-index", "--find-links", client_dependencies, "httpx")
    site = one(venv.glob("lib/python3*/site-packages"))
    installed = {p.name for p in site.iterdir()} - {"__pycache__"}
    assert "casegraph" in installed
    assert not {"app", "extractors", "graph_schema", "casegraph_client"} & installed
    report = run_client(venv, server.url, "casegraph", tmp_path)
    assert report["client_file"] == str(site / "casegraph" / "client" / "clients.py")
    assert report["importable"]["casegraph"] and not report["importable"]["app"]
    assert report["hits"][0] == report["wrong"] and report["async_hits"][0] == report["other"]
    assert report["forgotten_code"] == "MEMORY_NOT_FOUND"


def fresh_venv(path: Path) -> Path:
    """A virtual environment of the base interpreter that sees none of this one's packages."""
    run(sys.executable, "-m", "venv", "--without-pip", path)
    return path


def run_client(venv: Path, url: str, module_name: str, workdir: Path) -> dict:
    script = workdir / "client_script.py"
    script.write_text(CLIENT_SCRIPT)
    # -I: no PYTHONPATH, no user site, not the script's folder: only the venv's packages.
    return json.loads(run(venv / "bin" / "python", "-I", script, url, module_name, cwd=workdir))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """A wheel of an installed (pure-Python) distribution: its files as RECORD lists them,
    less what the installer wrote (scripts, bytecode, INSTALLER, direct_url.json)."""
    wheel_tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
                  if line.startswith("Tag:")]
    supported = {str(t) for t in sys_tags()}
    tag = next(t for t in wheel_tags if t in supported)
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    target = out / f"{name}-{dist.version}-{tag}.whl"
    record_lines = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as whl:
        record_name = None
        for file in dist.files or []:
            posix = file.as_posix()
            if posix.startswith("..") or "__pycache__" in posix or posix.endswith(".pyc"):
                continue
            if posix.endswith(".dist-info/RECORD"):
                record_name = posix
                continue
            if posix.endswith((".dist-info/INSTALLER", ".dist-info/REQUESTED", ".dist-info/direct_url.json")):
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            whl.writestr(posix, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record_lines.append(f"{posix},sha256={digest},{len(data)}")
        assert record_name, f"{dist.metadata['Name']} has no RECORD"
        whl.writestr(record_name, "\n".join([*record_lines, f"{record_name},,"]) + "\n")
    return target


def one(paths) -> Path:
    found = list(paths)
    assert len(found) == 1, found
    return found[0]
