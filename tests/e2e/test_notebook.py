"""Execute notebooks/ticket_relationships.ipynb (it starts and stops its own server).

The executed copy goes to the test's tmp dir. To refresh the committed outputs after
changing the notebook, run ``python -m tests.test_notebook`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "ticket_relationships.ipynb"

pytestmark = pytest.mark.e2e


def execute_notebook(source: Path, target: Path, timeout: int = 300):
    """Run every cell with a fresh kernel (cwd: notebooks/) and write the result to ``target``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(source, as_version=4)
    # The kernel is this interpreter, so it sees the same packages (and this checkout).
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(source.parent)}},
    )
    client.kernel_manager_class = _this_python_kernel()
    client.execute()
    nbformat.write(nb, target)
    return nb


def _this_python_kernel():
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return [sys.executable, *cmd[1:]]

    return ThisPython


def test_ticket_relationships_notebook_runs_and_shows_a_table_and_two_plots(tmp_path):
    nb = execute_notebook(NOTEBOOK, tmp_path / NOTEBOOK.name)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # The related-tickets table: T-1042's refund ticket first, with its reasons.
    related = next(h for h in html if "reasons" in h)
    assert "<table" in related and "T-1043" in related and "shared order #4521" in related
    assert related.index("T-1043") < related.index("T-1057")
    assert len(images) == 2  # the cluster drawing and the products bar chart
    assert all(len(o.data["image/png"]) > 10_000 for o in images)
    assert "stored " in text and "server stopped: True" in text


if __name__ == "__main__":
    execute_notebook(NOTEBOOK, NOTEBOOK)
    print(f"executed {NOTEBOOK.relative_to(ROOT)} with outputs")
