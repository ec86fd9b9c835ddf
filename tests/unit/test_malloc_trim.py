"""Freed native memory goes back to the OS, at most once per interval."""

from __future__ import annotations

import sys

import pytest
from casegraph.ops.malloc_trim import FreeMemoryReleaser

from tests.clock import FakeClock


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_release_trims_at_most_once_per_interval():
    clock = FakeClock(100.0)
    releaser = FreeMemoryReleaser(min_interval_s=2.0, clock=clock)
    assert releaser.available
    assert releaser.release() is True
    assert releaser.release() is False  # too soon
    clock.advance(seconds=1.9)
    assert releaser.release() is False
    clock.advance(seconds=0.2)
    assert releaser.release() is True
    assert releaser.releases == 2


def test_the_write_path_releases_after_a_change(services):
    releasers = [getattr(fn, "__self__", None) for fn in services.memories.listeners]
    assert any(isinstance(r, FreeMemoryReleaser) for r in releasers)
