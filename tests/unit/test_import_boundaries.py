"""The layers hold: which package may import what, where Cypher may be written, no cycles.

Read from the source with ``ast`` (nothing is imported). The rules are the ones each
package's docstring states (app/__init__.py draws the layers):

- engines: kuzu, usearch and tantivy only in ``storage.embedded``; falkordb and redis only in
  ``storage.falkor``; torch,
  sentence-transformers and ONNX only in ``embedding``; spaCy only in ``extractors``;
  strawberry and starlette only in ``api`` (uvicorn also in the command line that serves).
- Cypher only in the engines, ``storage.embedded`` and ``storage.falkor``; neither imports
  the other.
- the domain imports no API, no engine folder of storage, no operations module but settings;
- the API imports no storage;
- storage imports no API, no operations module, and of the domain only its record types;
- no two modules import each other, directly or around a loop (imports at module level).

``KNOWN`` lists violations accepted for now; it is empty, and must match what the tree holds
exactly: a new violation fails, and so does a fixed one still listed (delete it).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"casegraph": ROOT / "app", "casegraph.extractors": ROOT / "extractors",
            "casegraph.graph_schema": ROOT / "graph_schema"}

ENGINES = {
    "kuzu": "storage.embedded", "usearch": "storage.embedded", "tantivy": "storage.embedded",
    "falkordb": "storage.falkor", "redis": "storage.falkor",
    "torch": "embedding", "sentence_transformers": "embedding", "onnxruntime": "embedding",
    "onnx": "embedding", "optimum": "embedding", "transformers": "embedding",
    "spacy": "extractors", "strawberry": "api", "starlette": "api", "uvicorn": "api",
}
# The command line serves the app (uvicorn) and is allowed to.
ENGINE_EXCEPTIONS = {("ops.cli", "uvicorn")}
CYPHER = re.compile(r"\b(?:OPTIONAL MATCH|MATCH|MERGE|UNWIND|DETACH DELETE)\s*[(\[$]|\bRETURN\s+[a-z_]+[.,\s]")
DOMAIN_RECORD_MODULES = {"domain.models", "domain.ticket_models"}

# Violations accepted for now: (rule, module, what it reaches). None.
KNOWN: set[tuple[str, str, str]] = set()


def modules() -> Iterator[tuple[str, Path]]:
    for prefix, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            if prefix == "casegraph" and parts and parts[0] in ("extractors", "graph_schema"):
                continue
            yield name, path


def short(name: str) -> str:
    return name.removeprefix("casegraph.") if name != "casegraph" else ""


def layer(name: str) -> str:
    s = short(name)
    if s.startswith("storage.embedded"):
        return "storage.embedded"
    if s.startswith("storage.falkor"):
        return "storage.falkor"
    head = s.split(".")[0]
    return head if head in {"api", "domain", "storage", "embedding", "ops", "extractors", "graph_schema"} else "top"


def imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file."""
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        at_top = id(node) in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, at_top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from casegraph.domain import memory` imports the module casegraph.domain.memory
                yield (f"{module}.{alias.name}" if module.startswith("casegraph") else module), at_top


def resolve(target: str, known: set[str]) -> str | None:
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def docstring_ids(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def scan() -> tuple[set[tuple[str, str, str]], dict[str, set[str]]]:
    files = dict(modules())
    known = set(files)
    found: set[tuple[str, str, str]] = set()
    graph: dict[str, set[str]] = {m: set() for m in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        me, my_layer = short(name), layer(name)
        for target, at_top in imports(tree, name, path.name == "__init__.py"):
            engine = target.split(".")[0]
            if engine in ENGINES and not target.startswith("casegraph"):
                allowed = ENGINES[engine]
                if not (me == allowed or me.startswith(allowed + ".") or my_layer == allowed) \
                        and (me, engine) not in ENGINE_EXCEPTIONS:
                    found.add(("engine", me, engine))
                continue
            if not target.startswith("casegraph"):
                continue
            module = resolve(target, known)
            if module is None or module == name:
                continue
            if at_top and module != "casegraph":
                graph[name].add(module)
            other, other_layer = short(module), layer(module)
            if my_layer == "domain" and (
                other_layer in {"api", "storage.embedded", "storage.falkor", "embedding"}
                or (other_layer == "ops" and other != "ops.settings")
                or other == "services"
            ):
                found.add(("domain-import", me, other))
            elif my_layer == "api" and other_layer in {"storage", "storage.embedded", "storage.falkor", "embedding"}:
                found.add(("api-import", me, other))
            elif my_layer in {"storage", "storage.embedded", "storage.falkor"} and (
                other_layer in {"api", "ops", "embedding"}
                or (other_layer == "domain" and other not in DOMAIN_RECORD_MODULES)
                or other == "services"
                or {my_layer, other_layer} == {"storage.embedded", "storage.falkor"}
            ):
                found.add(("storage-import", me, other))
        if layer(name) not in ("storage.embedded", "storage.falkor"):
            skip = docstring_ids(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                        and CYPHER.search(node.value):
                    found.add(("cypher", me, "a Cypher string"))
                    break
    return found, graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(short(c) for c in component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_layers_hold_and_the_known_list_is_exact():
    found, graph = scan()
    for component in cycles(graph):
        found.add(("cycle", component[0], " <-> ".join(component)))
    new = sorted(found - KNOWN)
    fixed = sorted(KNOWN - found)
    assert not new, "new layer violations (fix them; do not list them):\n" + "\n".join(map(str, new))
    assert not fixed, "fixed violations still listed in KNOWN (delete them):\n" + "\n".join(map(str, fixed))


def test_the_scanner_sees_what_it_should(tmp_path):
    """The rules catch each kind of violation on a small tree of their own."""
    src = "from casegraph.storage.embedded.graph import GraphStore\nQ = 'MATCH (m:Memory) RETURN m.id'\n"
    tree = ast.parse(src)
    got = list(imports(tree, "casegraph.domain.recall", False))
    assert ("casegraph.storage.embedded.graph.GraphStore", True) in got
    assert CYPHER.search("MATCH (m:Memory) RETURN m.id")
    assert CYPHER.search("UNWIND $rows AS r")
    assert not CYPHER.search("a match (for the customer) was found")
    assert layer("casegraph.storage.embedded.graph") == "storage.embedded"
    assert layer("casegraph.api.schema") == "api"
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    relative = ast.parse("from . import ranking\nfrom ..errors import CaseGraphError\n")
    assert [t for t, _ in imports(relative, "casegraph.domain.recall", False)] == [
        "casegraph.domain.ranking", "casegraph.errors.CaseGraphError"]
