"""The one fake clock of the test suite: a test sets it and moves it by hand.

Services take ``clock=`` (a callable returning an aware UTC datetime) and the native
memory releaser takes one returning seconds; ``FakeClock`` serves both.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """Calling it gives ``now``; ``advance(minutes=5)`` moves it forward."""

    def __init__(self, now: datetime | float) -> None:
        self.now = now

    def __call__(self) -> datetime | float:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move ``now`` by ``timedelta(**delta)`` (in seconds for a clock of seconds)."""
        step = timedelta(**delta)
        self.now = self.now + step if isinstance(self.now, datetime) else self.now + step.total_seconds()
