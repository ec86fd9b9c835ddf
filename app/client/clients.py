"""``CaseGraphClient`` (sync) and ``AsyncCaseGraphClient``: the same calls, written once.

Each call in ``Calls`` builds an ``Operation`` and hands it to ``_send``. The sync client's
``_send`` posts it and returns the answer; the async client's is a coroutine function, so
every call of ``AsyncCaseGraphClient`` returns an awaitable of the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from .wire import (
    GRAPHQL_PATH,
    HIT_FIELDS,
    MEMORY_FIELDS,
    SESSION_FIELDS,
    Operation,
    http_options,
    iso,
    read_answer,
    store_input,
)


class Calls:
    """The calls both clients offer. Sync: each returns its answer; async: an awaitable of it."""

    def _send(self, operation: Operation) -> Any:
        raise NotImplementedError

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """Run any GraphQL document; answer its ``data`` or raise CaseGraphClientError."""
        return self._send(Operation(query, variables or {}))

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
    ) -> Any:
        """Store one memory; answers the stored memory (with its extracted ``entities``)."""
        return self._send(Operation(
            f"mutation($i: StoreMemoryInput!) {{ store(input: $i) {{ {MEMORY_FIELDS} }} }}",
            {"i": store_input(locals())}, "store",
        ))

    def store_batch(self, items: Sequence[dict[str, Any]]) -> Any:
        """Each item takes the keyword arguments of ``store``; all are stored or none."""
        return self._send(Operation(
            f"mutation($is: [StoreMemoryInput!]!) {{ storeBatch(inputs: $is) {{ {MEMORY_FIELDS} }} }}",
            {"is": [store_input(item) for item in items]}, "storeBatch",
        ))

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
    ) -> Any:
        """The ``top_k`` best hits: ``score``, ``why``, ``signals`` and the ``memory``."""
        flt = {
            "sessionId": session_id,
            "customerId": customer_id,
            "tags": list(tags) if tags is not None else None,
            "since": iso(since),
            "until": iso(until),
            "minImportance": min_importance,
            "memoryTypes": list(memory_types) if memory_types is not None else None,
        }
        flt = {k: v for k, v in flt.items() if v is not None}
        return self._send(Operation(
            "query($a: String!, $q: String!, $k: Int!, $f: RecallFilter) "
            f"{{ recall(agentId: $a, query: $q, topK: $k, filter: $f) {{ {HIT_FIELDS} }} }}",
            {"a": agent_id, "q": query, "k": top_k, "f": flt or None}, "recall",
        ))

    def memory(self, *, agent_id: str, memory_id: str) -> Any:
        return self._send(Operation(
            f"query($a: String!, $id: ID!) {{ memory(agentId: $a, id: $id) {{ {MEMORY_FIELDS} }} }}",
            {"a": agent_id, "id": memory_id}, "memory",
        ))

    def forget(self, *, agent_id: str, memory_id: str) -> Any:
        """Forget one memory; answers whether it was there."""
        return self._send(Operation(
            "mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }",
            {"a": agent_id, "id": memory_id}, "forget",
        ))

    # -- sessions ---------------------------------------------------------------------
    def session_start(
        self, *, agent_id: str, customer_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Any:
        return self._send(Operation(
            "mutation($a: String!, $c: String, $m: JSON) "
            f"{{ sessionStart(agentId: $a, customerId: $c, metadata: $m) {{ {SESSION_FIELDS} }} }}",
            {"a": agent_id, "c": customer_id, "m": metadata}, "sessionStart",
        ))

    def session_end(self, *, session_id: str, summary: str | None = None) -> Any:
        """End a session; the server consolidates it into a summary memory."""
        return self._send(Operation(
            "mutation($s: ID!, $sum: String) "
            f"{{ sessionEnd(sessionId: $s, summary: $sum) {{ {SESSION_FIELDS} }} }}",
            {"s": session_id, "sum": summary}, "sessionEnd",
        ))


class CaseGraphClient(Calls):
    """Blocking calls over one ``httpx.Client`` (a connection pool); close it, or use ``with``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3300",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(**http_options(base_url, api_key, timeout), transport=transport)

    def __enter__(self) -> CaseGraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, operation: Operation) -> Any:
        return read_answer(self._http.post(GRAPHQL_PATH, json=operation.body()), operation)


class AsyncCaseGraphClient(Calls):
    """Awaitable calls over one ``httpx.AsyncClient``; ``await aclose()``, or ``async with``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3300",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(**http_options(base_url, api_key, timeout), transport=transport)

    async def __aenter__(self) -> AsyncCaseGraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, operation: Operation) -> Any:
        return read_answer(await self._http.post(GRAPHQL_PATH, json=operation.body()), operation)
