"""Times as CaseGraph writes them (app/times.py): one instant, one spelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from casegraph.times import iso, utc

PARIS = timezone(timedelta(hours=2))


def test_a_naive_time_is_taken_as_utc_and_an_aware_one_keeps_its_instant():
    assert utc(datetime(2025, 6, 30, 12, 0)) == datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
    moved = utc(datetime(2025, 6, 30, 14, 0, tzinfo=PARIS))
    assert moved == datetime(2025, 6, 30, 12, 0, tzinfo=UTC) and moved.tzinfo is UTC
    assert utc(None) is None


def test_iso_is_utc_with_an_offset_or_a_z():
    at = datetime(2025, 6, 30, 14, 0, tzinfo=PARIS)
    assert iso(at) == "2025-06-30T12:00:00+00:00"
    assert iso(at, zulu=True) == "2025-06-30T12:00:00Z"
    assert iso(datetime(2025, 6, 30, 12, 0, 0, 5000, tzinfo=UTC), zulu=True) == "2025-06-30T12:00:00.005000Z"
    assert iso(None) is None and iso(None, zulu=True) is None
