"""Backups of a running server, and restores into a stopped one.

Kùzu lets only one process open the database (docs/kuzu-quirks.md #8), so the running
server takes the snapshot itself: it holds off writers, CHECKPOINTs (the database file
alone is then complete) and copies the file, which takes a moment even for large graphs;
readers carry on. The file is copied rather than written with Kùzu's ``EXPORT DATABASE``
because a copy is exact and cheap: the recorded migrations and every property come back
byte for byte, with no re-import (EXPORT writes Parquet/CSV that must be imported into an
empty database and re-indexed). The copy is tied to the Kùzu version, which the manifest
records.

    server  snapshot(services, dir)      graph + vector indexes + manifest.json (sha256s)
            tar_stream(dir)              streamed to ``casegraph backup`` over HTTP
    CLI     receive(stream, dir)         unpacks safely, verifies every checksum
            restore(dir, data_dir)       server stopped: verify, move the old data aside, copy

The vector indexes are saved while writers are held off too, but they are a cache: the
server reconciles them against the graph at start-up. The keyword indexes are not in a
backup: a restore drops them and the server rebuilds them from the graph when it opens. API keys are not part of a backup
(restoring must not bring back a revoked key).

A FalkorDB store (``CASEGRAPH_STORE=falkordb://...``) is backed up the same way, over the
same endpoint: the snapshot holds each agent's graph as the server serialises it (DUMP,
taken under the agent's write lock) and the namespace's session and meta hashes
(storage/falkor/snapshots.py), in ``falkordb/``; the manifest records the namespace and the
graph module's version. ``casegraph restore --store falkordb://HOST:PORT/NS`` puts it back
into that namespace (on this server or another) when it holds no agent, or with
``--force`` after deleting its agents' data; stop the processes serving it first. A backup
restores only into the kind of store it was taken from (``BACKUP_STORE_MISMATCH``). The
server's own persistence (RDB snapshots, the append-only file) backs up the whole server.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from casegraph import __version__
from casegraph.errors import ConfigurationError
from casegraph.storage.backend import EMBEDDED, is_embedded
from casegraph.storage.embedded.datadir import DataDirLock

FORMAT = 1
MANIFEST = "manifest.json"
GRAPH = "graph"
VECTORS = "vectors"
KEYWORDS = "keywords"
# A FalkorDB store's snapshot: a file per agent's graph, and the namespace's hashes.
SERVER = "falkordb"
HASHES = f"{SERVER}/namespace.json"


def snapshot(services: Any, dest: Path) -> dict[str, Any]:
    """Write a consistent snapshot of the live data into the new directory ``dest``."""
    if not is_embedded(services.settings.store):
        return _server_snapshot(services.graph, dest)
    dest.mkdir(parents=True)
    (dest / VECTORS).mkdir()
    graph, vectors = services.graph, services.vectors
    with graph.frozen() as db_file:
        shutil.copyfile(db_file, dest / GRAPH)
        memories = {a: len(ids) for a, ids in graph.all_memory_ids().items()}
        schema_version = graph.schema_version
        model = graph.get_meta("embedding_model")
        vectors.save()
        for index in sorted(vectors.directory.glob("*.usearch")):
            shutil.copyfile(index, dest / VECTORS / index.name)
    manifest = {
        "format": FORMAT,
        "store": EMBEDDED,
        "casegraph": __version__,
        "kuzu": metadata.version("kuzu"),
        "createdAt": datetime.now(UTC).isoformat(),
        "schemaVersion": schema_version,
        "embeddingModel": json.loads(model) if model else None,
        "memories": sum(memories.values()),
        "agents": dict(sorted(memories.items())),
        "files": {rel: _describe(dest / rel) for rel in _payload(dest)},
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _server_snapshot(store: Any, dest: Path) -> dict[str, Any]:
    """A FalkorDB namespace's snapshot (storage/falkor/snapshots.py) into ``dest``."""
    from casegraph.storage.falkor import snapshots

    dest.mkdir(parents=True)
    (dest / SERVER).mkdir()
    graphs, memories = {}, {}
    for n, (agent_id, payload, count) in enumerate(snapshots.dump_graphs(store), start=1):
        rel = f"{SERVER}/graph-{n:06d}.dump"
        (dest / rel).write_bytes(payload)
        graphs[agent_id], memories[agent_id] = rel, count
    (dest / HASHES).write_text(json.dumps(snapshots.namespace_hashes(store), sort_keys=True))
    model = store.get_meta("embedding_model")
    manifest = {
        "format": FORMAT,
        "store": SERVER,
        "casegraph": __version__,
        "falkordb": snapshots.module_version(store),
        "namespace": store.address.namespace,
        "createdAt": datetime.now(UTC).isoformat(),
        "schemaVersion": store.schema_version,
        "embeddingModel": json.loads(model) if model else None,
        "memories": sum(memories.values()),
        "agents": memories,
        "graphs": graphs,
        "files": {rel: _describe(dest / rel) for rel in _payload(dest)},
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def verify(directory: Path) -> dict[str, Any]:
    """The manifest of a backup directory, after checking every file against it."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{directory} is not a CaseGraph backup: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise ConfigurationError(f"backup format {manifest.get('format')!r} is not supported")
    if set(files) != set(_payload(directory)):
        raise ConfigurationError(f"backup {directory} has missing or extra files")
    for rel, expected in files.items():
        if _describe(directory / rel) != expected:
            raise ConfigurationError(f"backup file {rel} does not match its checksum")
    return manifest


def restore(source: Path, data_dir: Path, *, force: bool = False, store: str = EMBEDDED) -> dict[str, Any]:
    """Replace the data in ``data_dir`` (no server running) with the backup in ``source``.

    An existing graph is moved to ``<data_dir>/pre-restore-<time>/`` (only with ``force``).
    ``store``: where the data goes: a FalkorDB address restores a FalkorDB backup into its
    namespace (``data_dir`` is not used; see the module docstring).
    """
    manifest = verify(source)
    kind = manifest.get("store", EMBEDDED)
    if kind != (EMBEDDED if is_embedded(store) else SERVER):
        raise ConfigurationError(
            f"{source} is a backup of {'an embedded' if kind == EMBEDDED else 'a FalkorDB'} store and restores "
            f"only into one (the store given is {store!r})",
            code="BACKUP_STORE_MISMATCH",
        )
    if kind == SERVER:
        _server_restore(source, manifest, store, force=force)
        return manifest
    data_dir.mkdir(parents=True, exist_ok=True)
    with DataDirLock(data_dir):
        existing = [p for p in (data_dir / GRAPH, data_dir / f"{GRAPH}.wal", data_dir / VECTORS) if p.exists()]
        if existing and not force:
            raise ConfigurationError(
                f"{data_dir} already holds data; pass --force to move it aside and restore"
            )
        if existing:
            aside = data_dir / f"pre-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
            aside.mkdir()
            for p in existing:
                p.rename(aside / p.name)
        shutil.rmtree(data_dir / KEYWORDS, ignore_errors=True)
        (data_dir / VECTORS).mkdir()
        for rel in manifest["files"]:
            shutil.copyfile(source / rel, data_dir / rel)
        for rel, expected in manifest["files"].items():
            if _describe(data_dir / rel) != expected:
                raise ConfigurationError(f"restored file {rel} does not match its checksum")
    return manifest


def _server_restore(source: Path, manifest: dict[str, Any], store: str, *, force: bool) -> None:
    from casegraph.storage.falkor import snapshots
    from casegraph.storage.falkor.connection import Connection

    conn = Connection(store)
    try:
        snapshots.restore(
            conn, manifest["namespace"],
            {agent_id: (source / rel).read_bytes() for agent_id, rel in manifest["graphs"].items()},
            json.loads((source / HASHES).read_text()), force=force,
        )
    finally:
        conn.close()


def tar_stream(directory: Path) -> Iterator[bytes]:
    """The backup directory as an uncompressed tar, file by file in 1 MiB chunks."""
    for rel in [MANIFEST, *_payload(directory)]:
        path = directory / rel
        info = tarfile.TarInfo(rel)
        info.size = path.stat().st_size
        info.mtime = int(path.stat().st_mtime)
        info.mode = 0o600
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        with open(path, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)  # end of archive


def receive(chunks: Iterable[bytes], dest: Path) -> dict[str, Any]:
    """Unpack a streamed backup into the new or empty ``dest``; verify it; return its manifest."""
    if dest.exists() and any(dest.iterdir()):
        raise ConfigurationError(f"{dest} is not empty; back up into a new directory")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=_Reader(chunks), mode="r|") as tar:
        for member in tar:
            # Only plain files at the paths a backup holds: never links or '..'.
            if not member.isfile() or not _safe(member.name):
                raise ConfigurationError(f"unexpected entry {member.name!r} in the backup stream")
            tar.extract(member, dest, filter="data")
    return verify(dest)


def _payload(directory: Path) -> list[str]:
    files = [GRAPH] if (directory / GRAPH).exists() else []
    files += [f"{VECTORS}/{p.name}" for p in sorted((directory / VECTORS).glob("*.usearch"))]
    files += [f"{SERVER}/{p.name}" for p in sorted((directory / SERVER).glob("*")) if p.is_file()]
    return files


def _safe(name: str) -> bool:
    parts = name.split("/")
    if len(parts) == 2 and ".." not in parts[1] and parts[1]:
        return (parts[0] == VECTORS and parts[1].endswith(".usearch")) or parts[0] == SERVER
    return name in (MANIFEST, GRAPH)


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


class _Reader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
