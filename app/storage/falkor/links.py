"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class GraphLinks(Connection):
    """Recall's graph reads on FalkorDB (``GraphSearch``). (a part of ``FalkorStore``)."""
