"""What both embedding runtimes do around the model libraries: stay offline, stay quiet."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator


def stay_offline() -> None:
    """Before sentence-transformers or transformers load: the hub is never contacted
    (models come from packages or local paths), and its progress bars stay off (a
    "Loading weights" bar would break one-JSON-object-per-line logs). Set only where the
    environment has not chosen otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@contextlib.contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Only errors from these loggers (and their children; ``""`` is the root logger)
    while the block runs."""
    found = [logging.getLogger(name) for name in loggers]
    levels = [lg.level for lg in found]
    for lg in found:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(found, levels, strict=True):
            lg.setLevel(level)
