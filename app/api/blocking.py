"""Running blocking work from the API's async handlers.

Domain calls block (Kùzu, the embedding model, spaCy), and so do backups and metric
renders: every resolver, route and lifespan chore runs them through ``run_blocking``, in
a worker thread, so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread; its result or its exception."""
    return await asyncio.to_thread(fn, *args, **kwargs)
