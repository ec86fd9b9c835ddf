"""The client folder is one source for two distributions (``casegraph.client`` in the
server, ``casegraph_client`` in casegraph-client): it may import only the standard library,
httpx and its own modules, relatively, anywhere in a module (read with ``ast``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "app" / "client"


def test_the_client_imports_only_the_standard_library_httpx_and_itself():
    outside = []
    for path in sorted(CLIENT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                continue
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "httpx" and top not in sys.stdlib_module_names:
                    outside.append((path.name, name))
    assert {p.name for p in CLIENT.glob("*.py")} >= {"__init__.py", "clients.py", "wire.py"}
    assert outside == []
