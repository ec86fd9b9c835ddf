"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class AliasLearning(Connection):
    """Alias learning on FalkorDB: what customers and sessions are known by (``CustomerStore`` aliases). (a part of ``FalkorStore``)."""
