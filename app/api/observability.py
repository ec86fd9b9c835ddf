"""Metrics and access logs at the API boundary: an ASGI middleware and a GraphQL extension.

- ``HttpObservability`` (outermost middleware) times every HTTP request, counts it by
  route and status, and writes one access-log line tagged with the request id.
- ``graphql_metrics(metrics)`` is a Strawberry extension that times each operation under
  its name and type, counts errors by ``extensions.code``, and counts what the root
  fields did (memories stored or forgotten, recalls and their hits). It must come
  before ``ErrorCodes`` in the schema's extensions so that it sees the shaped errors.
- ``metrics_endpoint(metrics)`` serves ``GET /metrics`` in Prometheus text format.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from casegraph.api.blocking import run_blocking
from casegraph.ops.logs import REQUEST_ID
from casegraph.ops.metrics import CONTENT_TYPE, Metrics
from graphql import FieldNode, GraphQLResolveInfo, OperationDefinitionNode
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

access_log = logging.getLogger("casegraph.access")

ROUTES = ("/graphql", "/health/ready", "/health/live", "/health", "/metrics", "/playground-assets")
# Polled by orchestrators and scrapers: logged at DEBUG so they do not drown the rest.
QUIET_ROUTES = {"/health", "/health/ready", "/health/live", "/metrics"}
_COUNTED_FIELDS = {"store", "storeBatch", "forget", "recall"}


def route_of(path: str) -> str:
    """A bounded label for a path (unknown paths would make unbounded series)."""
    for route in ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


class HttpObservability:
    """Times and counts every HTTP request and logs it with its request id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app dies before answering

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope["path"])
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_duration.labels(route).observe(elapsed)
            if status == 401:  # refused by the auth middleware, before GraphQL
                self.metrics.errors.labels("UNAUTHENTICATED", "").inc()
            state = scope.get("state", {})
            access_log.log(
                logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
                "%s %s %s %.1f ms", scope["method"], scope["path"], status, elapsed * 1000,
                extra={
                    "requestId": REQUEST_ID.get() or state.get("request_id"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "durationMs": round(elapsed * 1000, 2),
                    **({"operation": state["graphql_operation"]} if "graphql_operation" in state else {}),
                },
            )


def graphql_metrics(metrics: Metrics) -> type[SchemaExtension]:
    """A Strawberry extension class bound to ``metrics`` (extensions are built per request)."""

    class GraphQLMetrics(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            started = time.perf_counter()
            yield
            ec = self.execution_context
            try:
                op_type = ec.operation_type.value
            except Exception:  # no parsable document: a syntax error
                op_type = "unknown"
            operation = metrics.operation_label(ec.operation_name, _root_fields(ec))
            result_errors = getattr(ec.result, "errors", None) or ec.pre_execution_errors or []
            metrics.graphql_duration.labels(operation, op_type).observe(time.perf_counter() - started)
            metrics.graphql_requests.labels(operation, op_type, "error" if result_errors else "ok").inc()
            for error in result_errors:
                code = (error.extensions or {}).get("code", "UNKNOWN")
                metrics.errors.labels(code, operation).inc()
            request = getattr(ec.context, "request", None)
            if request is not None:
                request.scope.setdefault("state", {})["graphql_operation"] = operation

        def resolve(
            self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo, *args: Any, **kwargs: Any
        ) -> Any:
            result = _next(root, info, *args, **kwargs)
            if info.path.prev is not None or info.field_name not in _COUNTED_FIELDS:
                return result
            return _counted(metrics, info.field_name, result)

    return GraphQLMetrics


async def _counted(metrics: Metrics, field: str, result: Any) -> Any:
    value = await result if inspect.isawaitable(result) else result
    if field == "store":
        metrics.stored.inc()
    elif field == "storeBatch":
        metrics.stored.inc(len(value))
    elif field == "forget" and value:
        metrics.forgotten.inc()
    elif field == "recall":
        metrics.recalls.inc()
        metrics.recall_hits.observe(len(value))
    return value


def _root_fields(ec: Any) -> list[str]:
    document = getattr(ec, "graphql_document", None)
    if document is None:
        return ["invalid"]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = ec.operation_name
    chosen = next((o for o in operations if name and o.name and o.name.value == name), None)
    chosen = chosen or (operations[0] if operations else None)
    if chosen is None:
        return ["invalid"]
    return [s.name.value for s in chosen.selection_set.selections if isinstance(s, FieldNode)]


def metrics_endpoint(metrics: Metrics) -> Callable[[Request], Any]:
    async def serve_metrics(request: Request) -> Response:
        # Rendering reads the graph (memories per agent): keep it off the event loop.
        body = await run_blocking(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    return serve_metrics
