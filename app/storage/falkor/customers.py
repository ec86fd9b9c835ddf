"""x"""

from __future__ import annotations

from casegraph.storage.falkor.connection import Connection


class CustomerQueries(Connection):
    """Customers on FalkorDB (``CustomerStore``, but alias learning: aliases.py). (a part of ``FalkorStore``)."""
