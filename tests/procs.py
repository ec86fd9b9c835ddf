"""A real `casegraph serve` process for tests that need one (crash, load): started with
`python -m casegraph.ops.cli serve`, reached over HTTP, stopped gracefully or with SIGKILL.

It serves the suite's backend (tests/conftest.py STORE_UNDER_TEST): with a FalkorDB one,
each data directory gets a namespace of the run's server, the same one every time a
process starts on that directory again (a restart, a start after a crash)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, test_store

ROOT = Path(__file__).resolve().parents[1]
_STORES: dict[Path, str] = {}


def store_of(data_dir: Path) -> str:
    """The store a process on ``data_dir`` serves (the same one on every start)."""
    key = Path(data_dir).resolve()
    if key not in _STORES:
        _STORES[key] = test_store()
    return _STORES[key]


class ServerProcess:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.env = {"CASEGRAPH_STORE": store_of(data_dir), **(env or {})}
        self.log_path = log
        self._start()

    def _start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CASEGRAPH_")}
        # PYTHONFAULTHANDLER: a native crash leaves the threads' Python stacks in the log.
        full_env.update({"CASEGRAPH_BUFFER_POOL_MB": "128", "HF_HUB_OFFLINE": "1", "PYTHONFAULTHANDLER": "1",
                         **self.env})
        self.log = open(self.log_path or os.devnull, "ab")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casegraph.ops.cli", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir), "--log-level", "WARNING"],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.start_seconds = time.monotonic() - started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become healthy")

    def restart(self) -> None:
        """Stopped gracefully and started again on the same data (a new port: read ``url``)."""
        self.stop()
        self._start()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or saved."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
