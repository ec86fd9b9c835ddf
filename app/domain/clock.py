"""The service clock: what "now" is for the domain (tests hand in a fake one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)
