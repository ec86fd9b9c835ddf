"""What goes over the wire, for both clients: the GraphQL selections, one ``Operation`` per
request (document, variables, which field of the answer to return), the reading of an answer
and ``CaseGraphClientError``. No I/O here: the sync and async clients only send."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

GRAPHQL_PATH = "/graphql"

MEMORY_FIELDS = (
    "id agentId content importance tags memoryType metadata createdAt updatedAt expiresAt "
    "sessionId customerId entities { kind value key }"
)
SESSION_FIELDS = "id agentId customerId startedAt endedAt summary metadata memoryCount active"
HIT_FIELDS = (
    f"score why memory {{ {MEMORY_FIELDS} }} signals {{ semantic keyword importance recency graph }}"
)


class CaseGraphClientError(Exception):
    """The server answered with an error (``code`` is machine-readable)."""

    def __init__(self, message: str, code: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.message = message
        self.code = code
        self.errors = errors or []


@dataclass(frozen=True)
class Operation:
    """One GraphQL request, and the field of its ``data`` the caller gets (all of it if None)."""

    document: str
    variables: dict[str, Any] = field(default_factory=dict)
    answer_field: str | None = None

    def body(self) -> dict[str, Any]:
        return {"query": self.document, "variables": self.variables}


def http_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client`` / ``httpx.AsyncClient`` for a server."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"base_url": base_url.rstrip("/"), "headers": headers, "timeout": timeout}


def read_answer(response: httpx.Response, operation: Operation) -> Any:
    """The answer's data (or its ``operation.answer_field``), or CaseGraphClientError."""
    if response.status_code == 401:
        body = response.json()
        raise CaseGraphClientError(body.get("error", "unauthenticated"), body.get("code", "UNAUTHENTICATED"))
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        first = body["errors"][0]
        raise CaseGraphClientError(
            first.get("message", "error"), first.get("extensions", {}).get("code", "UNKNOWN"), body["errors"]
        )
    data = body["data"]
    return data if operation.answer_field is None else data[operation.answer_field]


def iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def store_input(args: Mapping[str, Any]) -> dict[str, Any]:
    """A ``StoreMemoryInput`` from the keyword arguments of ``store`` (unset ones left out)."""
    item = {
        "agentId": args["agent_id"],
        "content": args["content"],
        "importance": args.get("importance", 0.5),
        "tags": list(args["tags"]) if args.get("tags") is not None else None,
        "sessionId": args.get("session_id"),
        "customerId": args.get("customer_id"),
        "memoryType": args.get("memory_type", "episodic"),
        "metadata": args.get("metadata"),
        "createdAt": iso(args.get("created_at")),
        "ttlSeconds": args.get("ttl_seconds"),
        "ticketId": args.get("ticket_id"),
    }
    return {k: v for k, v in item.items() if v is not None}
