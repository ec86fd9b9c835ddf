"""Times as CaseGraph keeps and writes them: aware UTC datetimes, ISO 8601 text.

A leaf every layer may import (like ``errors.py``): storage reads naive UTC from Kùzu,
the domain and the export write JSON, and all must agree on one instant and one spelling.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(value: datetime | int | None) -> datetime | None:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already (Kùzu
    returns naive UTC), an integer is microseconds since the epoch (how FalkorDB keeps
    times). None stays None."""
    if value is None:
        return None
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None, *, zulu: bool = False) -> str | None:
    """ISO 8601 of ``value`` in UTC, ``2025-06-30T12:00:00+00:00`` (or ``...Z`` with
    ``zulu``); microseconds only when there are any. None stays None."""
    value = utc(value)
    if value is None:
        return None
    text = value.isoformat()
    return text.replace("+00:00", "Z") if zulu else text
