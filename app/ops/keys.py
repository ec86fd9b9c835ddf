"""API keys, stored hashed: in a small JSON file (``<data_dir>/keys.json`` by default) for
the embedded store, in the server for a FalkorDB store (``open_key_store`` picks).

Why a file and not the Kùzu graph: Kùzu lets one process open a database
(docs/kuzu-quirks.md #8), and that process is the running server. Keeping the keys beside the graph lets
``casegraph keys create|list|revoke`` work while the server runs; the server notices the
file changed (one ``stat`` per request) and a revoked key stops working on its next
request. Keys are also not customer data: they stay out of backups and erasure.

A key reads ``cg_<id>_<secret>``: the id finds the record, the secret is 32 random bytes.
Only ``sha256(key)`` is stored. A fast hash is enough for a 256-bit random secret (slow
KDFs exist to protect guessable passwords); the comparison is constant-time.

With a FalkorDB store (``CASEGRAPH_STORE=falkordb://...``) any number of processes serve the
same data from different data directories, so a key file would be one process's alone: the
keys live in the server instead (``ServerKeyStore``, kept by storage/falkor/keys.py), and a
key created or revoked by ``casegraph keys --store falkordb://...`` counts on every process
at its next request. Same records, same rules; only where they are kept differs.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from casegraph.domain.models import AGENT_ID
from casegraph.errors import ConfigurationError, InvalidInput, NotFound

if TYPE_CHECKING:
    from casegraph.ops.settings import Settings

ROLES = ("read", "write", "admin")
ALL_AGENTS = "*"
_PREFIX = "cg_"
_ID_HEX = 12
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    role: str
    agents: tuple[str, ...]  # ("*",) = every agent
    hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key, or None."""
    if not key.startswith(_PREFIX) or len(key) < len(_PREFIX) + _ID_HEX + 2:
        return None
    kid, sep = key[len(_PREFIX) : len(_PREFIX) + _ID_HEX], key[len(_PREFIX) + _ID_HEX]
    if sep != "_" or any(c not in "0123456789abcdef" for c in kid):
        return None
    return kid


class KeyStore:
    """The keys and their rules, kept in the key file: atomic rewrites under a file lock;
    cached reads refreshed on change. Where they are kept is ``records``, ``configured``
    and ``_update`` (ServerKeyStore keeps them in a FalkorDB server)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._records: dict[str, KeyRecord] = {}

    # -- reads (the server, every request) ----------------------------------------------
    def records(self) -> dict[str, KeyRecord]:
        """All keys by id, re-read when the file changed since the last call."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._signature, self._records = None, {}
            return {}
        signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if signature != self._signature:
                self._records = _parse(self.path)
                self._signature = signature
            return self._records

    def configured(self) -> bool:
        """True once the key file exists: from then on every request needs a key."""
        return self.path.exists()

    def active(self) -> list[KeyRecord]:
        return [r for r in self.records().values() if r.active]

    def verify(self, key: str) -> KeyRecord | None:
        """The active record this key belongs to, or None."""
        kid = key_id_of(key)
        if kid is None:
            return None
        record = self.records().get(kid)
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(hash_key(key), record.hash) else None

    # -- writes (the CLI) ----------------------------------------------------------------
    def create(self, name: str, role: str, agents: Sequence[str]) -> tuple[KeyRecord, str]:
        """Add a key; return its record and the key itself (shown once, never stored)."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}", code="INVALID_ROLE")
        agents = tuple(dict.fromkeys(agents))
        if not agents:
            raise InvalidInput("a key needs at least one agent id (or '*' for all)", code="INVALID_AGENTS")
        if ALL_AGENTS in agents:
            agents = (ALL_AGENTS,)
        else:
            for a in agents:
                if not AGENT_ID.match(a):
                    raise InvalidInput(f"agent id {a!r} is invalid", code="INVALID_AGENT_ID")

        def add(records: dict[str, KeyRecord]) -> tuple[KeyRecord, str]:
            kid = secrets.token_hex(_ID_HEX // 2)
            while kid in records:
                kid = secrets.token_hex(_ID_HEX // 2)
            key = f"{_PREFIX}{kid}_{secrets.token_urlsafe(32)}"
            record = KeyRecord(
                id=kid, name=name.strip() or kid, role=role, agents=agents, hash=hash_key(key),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            records[kid] = record
            return record, key

        return self._update(add)

    def revoke(self, key_id: str) -> KeyRecord:
        def revoke(records: dict[str, KeyRecord]) -> KeyRecord:
            record = records.get(key_id)
            if record is None:
                raise NotFound(f"no key with id {key_id!r}", code="KEY_NOT_FOUND")
            if record.active:
                record = replace(record, revoked_at=datetime.now(UTC).isoformat(timespec="seconds"))
                records[key_id] = record
            return record

        return self._update(revoke)

    def _update(self, change: Callable[[dict[str, KeyRecord]], T]) -> T:
        """``change(records)`` (it may change them) under an exclusive lock, then the new
        file replaces the old atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = _parse(self.path) if self.path.exists() else {}
            result = change(records)
            body = {"version": 1, "keys": [asdict(r) for r in records.values()]}
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(body, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        return result

    def close(self) -> None:
        """Nothing to close: the file is opened per change."""


class ServerKeyStore(KeyStore):
    """The keys in a FalkorDB server (storage/falkor/keys.py): what every process sharing
    the store reads. Cached reads refreshed when the server's key version moved."""

    def __init__(self, store: str) -> None:
        from casegraph.storage.falkor.keys import ServerKeyDocuments

        self.store = store
        self._documents = ServerKeyDocuments(store)
        self._lock = threading.Lock()
        self._version: str | None = None
        self._records: dict[str, KeyRecord] = {}

    def records(self) -> dict[str, KeyRecord]:
        version = self._documents.version()
        with self._lock:
            if version == self._version:
                return self._records
        version, documents = self._documents.load()
        records = _records(documents.values(), f"the key hash in {self.store}")
        with self._lock:
            self._version, self._records = version, records
        return records

    def configured(self) -> bool:
        """True once any key was created in the server (revoked ones count: as with the
        file, from then on every request needs a key)."""
        return bool(self.records())

    def _update(self, change: Callable[[dict[str, KeyRecord]], T]) -> T:
        def on_documents(documents: dict[str, str]) -> tuple[dict[str, str], T]:
            before = _records(documents.values(), f"the key hash in {self.store}")
            records = dict(before)
            result = change(records)
            written = {k: json.dumps(asdict(r)) for k, r in records.items() if before.get(k) != r}
            return written, result

        return self._documents.update(on_documents)

    def close(self) -> None:
        self._documents.close()


def open_key_store(settings: Settings) -> KeyStore:
    """Where this deployment keeps its keys: the key file for the embedded store, the
    server for a FalkorDB one (every process sharing it must agree on them)."""
    from casegraph.storage.backend import is_embedded

    if is_embedded(settings.store):
        return KeyStore(settings.keys_path)
    return ServerKeyStore(settings.store)


def _parse(path: Path) -> dict[str, KeyRecord]:
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        # Fail closed: a damaged key file must not open the server.
        raise ConfigurationError(f"the key file {path} is unreadable: {exc}") from exc
    if not isinstance(body, dict):
        raise ConfigurationError(f"the key file {path} is unreadable: not a JSON object")
    return _records(body.get("keys", []), f"the key file {path}")


def _records(items: Any, where: str) -> dict[str, KeyRecord]:
    """Records by id from their dicts (or JSON texts); a damaged one fails closed."""
    try:
        out = {}
        for item in items:
            r = json.loads(item) if isinstance(item, str) else item
            out[r["id"]] = KeyRecord(**{**r, "agents": tuple(r["agents"])})
        return out
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"{where} is unreadable: {exc}") from exc
