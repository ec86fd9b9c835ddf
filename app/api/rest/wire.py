"""The Dakera wire format: reading request fields, writing memories and sessions as JSON.

Requests are read field by field through ``Fields``: a wrong type is a 400 naming the
field, a field the Dakera SDK sends but CaseGraph has no use for is ignored with a
reason, and any other field is ignored and named in the answer's ``warnings``.
Times follow the SDK: memories carry RFC 3339 strings, sessions and batch results
Unix seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from casegraph.api.rest.errors import RestError, not_implemented
from casegraph.domain.models import Memory, RecallHit, Session
from casegraph.errors import InvalidDate, InvalidInput
from casegraph.times import iso, utc
from starlette.requests import Request

# Unix seconds Dakera accepts for event times: 1970 .. 2286.
_MAX_UNIX = 10_000_000_000


def _invalid(name: str, wanted: str, value: Any) -> InvalidInput:
    shown = json.dumps(value)[:60] if not isinstance(value, str) else repr(value[:60])
    return InvalidInput(f"field '{name}' must be {wanted}, got {shown}", code="INVALID_REQUEST")


class Fields:
    """The fields of one JSON object (a request body, a batch item or the query string)."""

    def __init__(self, data: Any, *, prefix: str = "", what: str = "the request body") -> None:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{what} must be a JSON object", code="INVALID_REQUEST")
        self.data = data
        self.prefix = prefix
        self.notes: list[str] = []
        self._used: set[str] = set()

    def _get(self, name: str) -> Any:
        self._used.add(name)
        return self.data.get(name)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name)
        if value is None:
            if required:
                raise InvalidInput(f"field '{self.prefix}{name}' is required", code="INVALID_REQUEST")
            return None
        if not isinstance(value, str):
            raise _invalid(self.prefix + name, "a string", value)
        return value

    def number(self, name: str) -> float | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(self.prefix + name, "a number", value)
        return float(value)

    def integer(self, name: str) -> int | None:
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(self.prefix + name, "an integer", value)
        return value

    def flag(self, name: str) -> bool | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise _invalid(self.prefix + name, "true or false", value)
        return value

    def texts(self, name: str) -> list[str] | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(self.prefix + name, "a list of strings", value)
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _invalid(self.prefix + name, "a JSON object", value)
        return value

    def items(self, name: str) -> list[Any]:
        value = self._get(name)
        if not isinstance(value, list):
            raise _invalid(self.prefix + name, "a list", value)
        return value

    def time(self, name: str) -> datetime | None:
        """Unix seconds or an RFC 3339 string (a time without an offset is UTC)."""
        value = self._get(name)
        if value is None:
            return None
        return parse_time(value, self.prefix + name)

    def ignore(self, name: str, reason: str) -> None:
        """A Dakera field CaseGraph has no use for: accepted, reported, without effect."""
        if self.data.get(name) is not None:
            self._used.add(name)
            self.notes.append(f"field '{self.prefix}{name}' ignored: {reason}")

    def refuse(self, name: str, feature: str) -> None:
        """A Dakera field whose effect CaseGraph cannot give: 501 rather than a silent loss."""
        if self.data.get(name) is not None:
            raise not_implemented(f"{feature} ('{self.prefix}{name}')")

    def unknown(self) -> list[str]:
        return sorted(k for k in self.data if k not in self._used)

    def warnings(self) -> list[str]:
        return [*self.notes, *(f"unknown field '{self.prefix}{k}' ignored" for k in self.unknown())]


class QueryFields(Fields):
    """Query-string parameters: everything arrives as text, so numbers and flags are parsed."""

    def __init__(self, request: Request) -> None:
        super().__init__(dict(request.query_params), what="the query string")

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise _invalid(name, "an integer", value) from None

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise _invalid(name, "a number", value) from None
        if not math.isfinite(number):
            raise _invalid(name, "a finite number", value)
        return number

    def flag(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise _invalid(name, "true or false", value)


async def read_body(request: Request, max_bytes: int) -> Fields:
    """The request's JSON object. Insists on a JSON content type: a browser cannot send
    one cross-site without a CORS preflight, which CaseGraph never grants."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RestError(415, "UNSUPPORTED_MEDIA_TYPE",
                        "send the body as JSON with 'Content-Type: application/json'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return Fields({})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", code="INVALID_JSON") from None
    return Fields(data)


def _too_large(size: int, limit: int) -> RestError:
    return RestError(413, "PAYLOAD_TOO_LARGE", f"the request body has {size}+ bytes; the limit is {limit}")


def parse_time(value: Any, name: str) -> datetime:
    if isinstance(value, bool):
        raise _invalid(name, "Unix seconds or an RFC 3339 time", value)
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < _MAX_UNIX:
            raise InvalidDate(f"field '{name}' must be Unix seconds between 1970 and 2286, got {value!r}")
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidDate(f"field '{name}' is not an RFC 3339 time: {value[:60]!r}") from None
        return utc(parsed)
    raise _invalid(name, "Unix seconds or an RFC 3339 time", value)


# -- answers ---------------------------------------------------------------------------
def rfc3339(value: datetime | None) -> str | None:
    return iso(value, zulu=True)


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def memory_json(m: Memory, preview_chars: int | None = None) -> dict[str, Any]:
    """A memory as the SDK reads it, plus CaseGraph's own fields (customer, entities)."""
    body: dict[str, Any] = {
        "id": m.id,
        "agent_id": m.agent_id,
        "content": m.content,
        "memory_type": m.memory_type,
        "importance": m.importance,
        "tags": list(m.tags),
        "metadata": m.metadata,
        "session_id": m.session_id,
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "expires_at": unix(m.expires_at),
        "customer_id": m.customer_id,
        "entities": [{"kind": e.kind, "value": e.value, "key": e.key} for e in m.entities],
    }
    if preview_chars is not None:
        body["content"] = m.content[:preview_chars]
        body["content_len"] = len(m.content)
        body["content_truncated"] = len(m.content) > preview_chars
    return body


def hit_json(h: RecallHit) -> dict[str, Any]:
    s = h.signals
    score = round(h.score, 6)
    return {
        "memory": memory_json(h.memory),
        "score": score,
        "rank_score": score,
        "vector_score": round(s.semantic, 6),
        "text_score": round(s.keyword, 6),
        "signals": {
            "semantic": round(s.semantic, 6),
            "keyword": round(s.keyword, 6),
            "importance": round(s.importance, 6),
            "recency": round(s.recency, 6),
            "graph": round(s.graph, 6),
        },
        "why": list(h.why),
    }


def session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "agent_id": s.agent_id,
        "started_at": unix(s.started_at),
        "ended_at": unix(s.ended_at),
        "ended_reason": "client" if s.ended_at is not None else None,
        "metadata": s.metadata,
        "summary": s.summary,
        "memory_count": s.memory_count,
        "customer_id": s.customer_id,
    }
