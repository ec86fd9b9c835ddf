"""A small Python client for CaseGraph's GraphQL API.

    from casegraph.client import CaseGraphClient
    client = CaseGraphClient("http://127.0.0.1:3300")
    client.store(agent_id="support-bot", content="...", importance=0.8,
                 tags=["support", "returns", "customer:jane-doe"])
    hits = client.recall(agent_id="support-bot", query="Jane Doe previous interactions", top_k=5)

Answers are plain dicts in the API's camelCase; errors raise ``CaseGraphClientError``
with the server's ``code``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

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


class CaseGraphClient:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3300",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> CaseGraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run any GraphQL document; return its ``data`` or raise CaseGraphClientError."""
        response = self._http.post("/graphql", json={"query": query, "variables": variables or {}})
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
        return body["data"]

    # -- memories ---------------------------------------------------------------------
    def store(
        self,
        *,
        agent_id: str,
        content: str,
        importance: float = 0.5,
        tags: Sequence[str] | None = None,
        session_id: str | None = None,
        customer_id: str | None = None,
        memory_type: str = "episodic",
        metadata: dict[str, Any] | None = None,
        created_at: datetime | str | None = None,
        ttl_seconds: int | None = None,
        ticket_id: str | None = None,
    ) -> dict[str, Any]:
        item = _store_input(locals())
        data = self.execute(
            f"mutation($i: StoreMemoryInput!) {{ store(input: $i) {{ {MEMORY_FIELDS} }} }}", {"i": item}
        )
        return data["store"]

    def store_batch(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each item takes the keyword arguments of ``store``; all are stored or none."""
        inputs = [_store_input(i) for i in items]
        data = self.execute(
            f"mutation($is: [StoreMemoryInput!]!) {{ storeBatch(inputs: $is) {{ {MEMORY_FIELDS} }} }}",
            {"is": inputs},
        )
        return data["storeBatch"]

    def recall(
        self,
        *,
        agent_id: str,
        query: str,
        top_k: int = 5,
        session_id: str | None = None,
        customer_id: str | None = None,
        tags: Sequence[str] | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        min_importance: float | None = None,
        memory_types: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        flt = {
            "sessionId": session_id,
            "customerId": customer_id,
            "tags": list(tags) if tags is not None else None,
            "since": _iso(since),
            "until": _iso(until),
            "minImportance": min_importance,
            "memoryTypes": list(memory_types) if memory_types is not None else None,
        }
        flt = {k: v for k, v in flt.items() if v is not None}
        data = self.execute(
            "query($a: String!, $q: String!, $k: Int!, $f: RecallFilter) "
            f"{{ recall(agentId: $a, query: $q, topK: $k, filter: $f) {{ {HIT_FIELDS} }} }}",
            {"a": agent_id, "q": query, "k": top_k, "f": flt or None},
        )
        return data["recall"]

    def memory(self, *, agent_id: str, memory_id: str) -> dict[str, Any]:
        data = self.execute(
            f"query($a: String!, $id: ID!) {{ memory(agentId: $a, id: $id) {{ {MEMORY_FIELDS} }} }}",
            {"a": agent_id, "id": memory_id},
        )
        return data["memory"]

    def forget(self, *, agent_id: str, memory_id: str) -> bool:
        data = self.execute(
            "mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }", {"a": agent_id, "id": memory_id}
        )
        return bool(data["forget"])

    # -- sessions ---------------------------------------------------------------------
    def session_start(
        self, *, agent_id: str, customer_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data = self.execute(
            "mutation($a: String!, $c: String, $m: JSON) "
            f"{{ sessionStart(agentId: $a, customerId: $c, metadata: $m) {{ {SESSION_FIELDS} }} }}",
            {"a": agent_id, "c": customer_id, "m": metadata},
        )
        return data["sessionStart"]

    def session_end(self, *, session_id: str, summary: str | None = None) -> dict[str, Any]:
        data = self.execute(
            "mutation($s: ID!, $sum: String) "
            f"{{ sessionEnd(sessionId: $s, summary: $sum) {{ {SESSION_FIELDS} }} }}",
            {"s": session_id, "sum": summary},
        )
        return data["sessionEnd"]


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _store_input(args: dict[str, Any]) -> dict[str, Any]:
    item = {
        "agentId": args["agent_id"],
        "content": args["content"],
        "importance": args.get("importance", 0.5),
        "tags": list(args["tags"]) if args.get("tags") is not None else None,
        "sessionId": args.get("session_id"),
        "customerId": args.get("customer_id"),
        "memoryType": args.get("memory_type", "episodic"),
        "metadata": args.get("metadata"),
        "createdAt": _iso(args.get("created_at")),
        "ttlSeconds": args.get("ttl_seconds"),
        "ticketId": args.get("ticket_id"),
    }
    return {k: v for k, v in item.items() if v is not None}
