"""Fixtures of the embedding tests: a model cache per test module (each module exports the
ONNX model into its own, so one module's files never stand in for another's export)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("model-cache")
