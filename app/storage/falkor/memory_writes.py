"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class MemoryWrites(Connection):
    """The write path on FalkorDB: memories, their nodes and links, in one query (``MemoryStore.write_memories``). (a part of ``FalkorStore``)."""
