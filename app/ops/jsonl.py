"""The JSONL format of ``casegraph import`` and ``casegraph export``: one memory per line.

A line (every field but ``content`` is optional on import)::

    {"id": "...", "agentId": "support-bot", "content": "Order #4521 arrived damaged",
     "importance": 0.8, "memoryType": "episodic", "tags": ["returns"], "metadata": {},
     "createdAt": "2024-05-01T10:00:00Z", "updatedAt": "2024-05-01T10:00:00Z",
     "expiresAt": null, "customerId": "jane-doe", "orders": ["4521"], "tickets": ["T-1042"],
     "entities": [...],
     "session": {"id": "...", "customerId": "jane-doe", "startedAt": "...", "endedAt": "...",
                 "summary": null, "metadata": {}}}

``entities`` is derived (re-extracted from the text on import) and ignored on input.
``session`` may also be a bare id string. Ids that are not UUID-like (a helpdesk's
"chat-1234") map to stable UUIDs (uuid5 of agent and id), so every line naming the same
chat joins one session; a line without an id gets one derived from its content, so
importing the same file twice adds nothing the second time. Export writes every field,
in this order, and its output imports back to the same export byte for byte.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casegraph.domain.models import Memory, Session, StoreRequest
from casegraph.domain.validation import UUID_LIKE
from casegraph.times import iso, utc

# Fixed namespace for derived ids: the same input always maps to the same id.
ID_NAMESPACE = uuid.UUID("6f0c1f0e-6a53-4c1b-9d55-6361736567f2")

FIELDS = (
    "id", "agentId", "content", "importance", "memoryType", "tags", "metadata", "createdAt",
    "updatedAt", "expiresAt", "customerId", "orders", "tickets", "entities", "session",
)
SESSION_FIELDS = ("id", "customerId", "startedAt", "endedAt", "summary", "metadata")


class LineError(Exception):
    """A line that cannot become a store request: readable message plus a code."""

    def __init__(self, message: str, code: str = "INVALID_LINE") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """The session a line names: its id and the fields the line states (parsed)."""

    id: str
    given: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    request: StoreRequest
    session: SessionSpec | None


# -- import ------------------------------------------------------------------------
def parse_line(raw: bytes, *, default_agent: str | None = None) -> ParsedLine:
    """One line of a JSONL file -> a store request (validated further by the domain)."""
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8: {exc}", "INVALID_JSON") from exc
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON: {exc.msg} (column {exc.colno})", "INVALID_JSON") from exc
    if not isinstance(obj, dict):
        raise LineError(f"a line must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise LineError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")

    agent_id = _opt_str(obj, "agentId") or default_agent
    if agent_id is None:
        raise LineError("agentId is missing (give it on the line or with --agent)", "MISSING_AGENT")
    raw_id = _opt_str(obj, "id")
    memory_id = (
        stable_id("memory", agent_id, raw_id)
        if raw_id is not None
        else str(uuid.uuid5(ID_NAMESPACE, f"line|{agent_id}|{json.dumps(obj, sort_keys=True)}"))
    )
    content = obj.get("content")
    if not isinstance(content, str):
        raise LineError("content must be a string", "CONTENT_EMPTY" if content is None else "INVALID_LINE")
    importance = obj.get("importance", 0.5)
    if isinstance(importance, bool) or not isinstance(importance, int | float):
        raise LineError("importance must be a number between 0 and 1", "INVALID_IMPORTANCE")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise LineError("metadata must be a JSON object", "INVALID_METADATA")

    session = _session_spec(obj.get("session"), agent_id)
    request = StoreRequest(
        agent_id=agent_id,
        content=content,
        importance=float(importance),
        tags=_str_list(obj, "tags"),
        session_id=session.id if session else None,
        customer_id=_opt_str(obj, "customerId"),
        memory_type=_opt_str(obj, "memoryType") or "episodic",
        metadata=metadata,
        created_at=_opt_date(obj, "createdAt"),
        expires_at=_opt_date(obj, "expiresAt"),
        id=memory_id,
        updated_at=_opt_date(obj, "updatedAt"),
        orders=_str_list(obj, "orders"),
        tickets=_str_list(obj, "tickets"),
    )
    return ParsedLine(request, session)


def stable_id(kind: str, agent_id: str, raw: str) -> str:
    """Keep a UUID-like id; map any other string to a stable UUID."""
    if UUID_LIKE.match(raw):
        return raw
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}|{agent_id}|{raw}"))


def _session_spec(value: Any, agent_id: str) -> SessionSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        return SessionSpec(stable_id("session", agent_id, value))
    if not isinstance(value, dict):
        raise LineError("session must be an id string or an object")
    unknown = sorted(set(value) - set(SESSION_FIELDS))
    if unknown:
        raise LineError(f"unknown session field(s) {', '.join(unknown)}; known: {', '.join(SESSION_FIELDS)}")
    raw_id = _opt_str(value, "id", "session.id")
    if raw_id is None:
        raise LineError("session.id is missing")
    given: dict[str, Any] = {}
    if "customerId" in value:
        given["customer_id"] = _opt_str(value, "customerId", "session.customerId")
    for key, name in (("startedAt", "started_at"), ("endedAt", "ended_at")):
        if key in value:
            given[name] = _opt_date(value, key, f"session.{key}")
    if "summary" in value:
        given["summary"] = _opt_str(value, "summary", "session.summary")
    if "metadata" in value:
        meta = value["metadata"]
        if meta is not None and not isinstance(meta, dict):
            raise LineError("session.metadata must be a JSON object", "INVALID_METADATA")
        given["metadata"] = meta or {}
    return SessionSpec(stable_id("session", agent_id, raw_id), given)


def _opt_str(obj: dict[str, Any], key: str, name: str | None = None) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise LineError(f"{name or key} must be a string")
    return value


def _str_list(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LineError(f"{key} must be a list of strings")
    return tuple(value)


def _opt_date(obj: dict[str, Any], key: str, name: str | None = None) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LineError(f"{name or key} must be an ISO 8601 date-time string", "INVALID_DATE")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise LineError(f"{name or key} {value!r} is not an ISO 8601 date-time", "INVALID_DATE") from exc
    # A date-time without an offset is taken as UTC (as the GraphQL API does).
    return utc(parsed)


# -- export ------------------------------------------------------------------------
def memory_line(memory: Memory, session: Session | None) -> str:
    """One memory as one JSONL line (no newline), fields in ``FIELDS`` order."""
    obj = {
        "id": memory.id,
        "agentId": memory.agent_id,
        "content": memory.content,
        "importance": memory.importance,
        "memoryType": memory.memory_type,
        "tags": list(memory.tags),
        "metadata": memory.metadata,
        "createdAt": iso(memory.created_at, zulu=True),
        "updatedAt": iso(memory.updated_at, zulu=True),
        "expiresAt": iso(memory.expires_at, zulu=True),
        "customerId": memory.customer_id,
        "orders": list(memory.orders),
        "tickets": list(memory.tickets),
        "entities": [{"kind": e.kind, "value": e.value, "key": e.key} for e in memory.entities],
        "session": session_object(session) if session is not None else None,
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def session_object(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "customerId": s.customer_id,
        "startedAt": iso(s.started_at, zulu=True),
        "endedAt": iso(s.ended_at, zulu=True),
        "summary": s.summary,
        "metadata": s.metadata,
    }


