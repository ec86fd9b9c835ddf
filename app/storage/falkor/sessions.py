"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class SessionQueries(Connection):
    """Sessions on FalkorDB (``SessionStore``). (a part of ``FalkorStore``)."""
