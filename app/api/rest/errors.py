"""Errors on the REST surface: Dakera's status codes and ``{"error", "code"}`` bodies.

Every answer that is not a success is JSON, never an HTML page or a bare 500:

    CaseGraph error (app/errors.py)       status   code sent
    InvalidInput and its subclasses       400      its own code (CONTENT_EMPTY, INVALID_TOP_K, ...)
    NotFound and its subclasses           404      MEMORY_NOT_FOUND, SESSION_NOT_FOUND, ...
    Conflict and its subclasses           409      its own code
    AuthenticationRequired                401      its own code
    Forbidden (key outside its scope)     403      FORBIDDEN
    a transient storage refusal           503      STORAGE_FULL, STORE_UNAVAILABLE, STORE_BUSY,
      (StorageError.transient)                     REPLICATION_TIMEOUT (with Retry-After)
    anything else (storage, a bug)        500      INTERNAL_ERROR, logged with the request id, masked

    HTTP-level (RestError)
    body over the size limit              413      PAYLOAD_TOO_LARGE
    body not sent as JSON                 415      UNSUPPORTED_MEDIA_TYPE
    a Dakera route or field CaseGraph     501      NOT_IMPLEMENTED
      does not have
    no such route                         404      ROUTE_NOT_FOUND
    route exists, other method            405      METHOD_NOT_ALLOWED
    services still opening                503      SERVICE_UNAVAILABLE (with Retry-After)

The Dakera SDK turns the status into its exception (400 ValidationError, 404
NotFoundError, 413 PayloadTooLargeError, 501 FeatureNotAvailableError, ...).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from casegraph.errors import (
    AuthenticationRequired,
    CaseGraphError,
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageError,
)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("casegraph.rest")

_STATUS: tuple[tuple[type[CaseGraphError], int], ...] = (
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (AuthenticationRequired, 401),
    (Forbidden, 403),
)

# Route families the Dakera SDK (0.14.1) can call that CaseGraph does not serve: they
# answer 501 NOT_IMPLEMENTED, so a bot learns "not here" rather than "typo". Taken from
# the SDK's client.py; "{x}" is one path segment. /v1/capabilities stays a 404: the SDK
# reads a 404 there as "no capability document" and carries on.
_DAKERA_ROUTES = (
    "/admin/keys", "/admin/keys/{x}", "/admin/keys/{x}/*",
    "/debug/*", "/ops/*", "/v1/ops/*", "/v1/admin/*",
    "/v1/namespaces", "/v1/namespaces/{x}", "/v1/namespaces/{x}/*",
    "/v1/agents", "/v1/agents/{x}/*",
    "/v1/analytics/*", "/v1/audit", "/v1/audit/*", "/v1/auth/whoami", "/v1/kpis",
    "/v1/events/stream", "/v1/export", "/v1/extract", "/v1/route",
    "/v1/feedback/health", "/v1/import", "/v1/import/{x}/status",
    "/v1/knowledge/*",
    "/v1/memories/extract", "/v1/memories/forget/batch", "/v1/memories/recall/batch",
    "/v1/memories/{x}/*",
    "/v1/memory/consolidate", "/v1/memory/deduplicated", "/v1/memory/deduplicated/*",
    "/v1/memory/documents", "/v1/memory/documents/*", "/v1/memory/entities/{x}",
    "/v1/memory/feedback", "/v1/memory/importance", "/v1/memory/search",
    "/v1/sessions/{x}/touch",
)
_DAKERA_ROUTE_RE = re.compile(
    "^(?:"
    + "|".join(re.escape(p).replace(r"\{x\}", "[^/]+").replace(r"\*", ".+") for p in _DAKERA_ROUTES)
    + ")/?$"
)


class RestError(Exception):
    """An HTTP-level refusal that has no place in the domain's error tree."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_implemented(what: str) -> RestError:
    return RestError(
        501, "NOT_IMPLEMENTED",
        f"{what} is a Dakera feature CaseGraph does not have; CaseGraph serves memories "
        "(store, batch store, recall, get, update, forget), sessions, wake-up and health",
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, "code": code, **extra}


def error_response(request: Request, exc: BaseException) -> JSONResponse:
    """The JSON answer for any exception raised while serving a REST route."""
    if isinstance(exc, RestError):
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)
    if isinstance(exc, StorageError) and exc.transient:  # nothing was written, a retry may pass
        return JSONResponse(error_body(exc.code, exc.message), 503, headers={"Retry-After": "1"})
    if isinstance(exc, CaseGraphError) and not isinstance(exc, StorageError | ConfigurationError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return JSONResponse(error_body(exc.code, exc.message), status)
    return internal_error(request, exc)


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    log.error("unexpected error on %s %s (request %s)", request.method, request.url.path, request_id,
              exc_info=exc)
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal server error", request_id=request_id), 500)


async def http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's routing refusals (no route, wrong method) as Dakera-style JSON."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        if _DAKERA_ROUTE_RE.match(path):
            return error_response(request, not_implemented(f"{request.method} {path}"))
        return JSONResponse(error_body("ROUTE_NOT_FOUND", f"no route {request.method} {path}"), 404)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return JSONResponse(
            error_body("METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {path}; use {allow}"),
            405, headers=exc.headers,
        )
    return JSONResponse(error_body(f"HTTP_{exc.status_code}", str(exc.detail)), exc.status_code, headers=exc.headers)


async def unhandled(request: Request, exc: Exception) -> JSONResponse:
    return internal_error(request, exc)


def exception_handlers() -> dict[Any, Any]:
    """For ``Starlette(exception_handlers=...)``: JSON for every routing refusal and crash."""
    return {HTTPException: http_exception, Exception: unhandled}
