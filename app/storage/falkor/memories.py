"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class MemoryQueries(Connection):
    """Memory reads on FalkorDB: by id, page and filter, and ranking attributes (``MemoryStore``). (a part of ``FalkorStore``)."""
