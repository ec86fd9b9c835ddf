"""The ASGI gate in front of every route: request id, authentication, body size.

1. every request gets an id (``X-Request-ID`` in, or a fresh one) echoed in the response;
2. with any key configured, a bearer key is required (401 otherwise) and becomes the
   request's ``Caller`` in ``scope["state"]["caller"]`` (``request.state.caller``), which
   the GraphQL context and any other adapter hand to ``casegraph.api.auth.authorize``;
3. a body larger than ``max_body_bytes`` is refused with 413 before anything parses it;
4. an exception that escapes a route is logged with the request id and answered with a
   JSON 500 that says nothing about internals.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from casegraph.api.auth import Authenticator, bearer_token
from casegraph.errors import ConfigurationError, StorageError
from casegraph.ops.logs import bind_request_id
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("casegraph.http")

PUBLIC_PREFIXES = ("/health", "/playground-assets")


class RequestGate:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, max_body_bytes: int) -> None:
        self.app = app
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = _clean_id(headers.get("x-request-id", "")) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        bind_request_id(request_id)  # every log line of this request carries it
        reply = _Replier(scope, receive, send, request_id)

        try:
            caller = self.authenticator.authenticate(bearer_token(headers.get("authorization")))
        except (ConfigurationError, StorageError) as exc:  # a damaged key file, the store down: fail closed
            log.error("authentication unavailable (request %s): %s", request_id, exc.message)
            if getattr(exc, "transient", False):
                await reply(503, exc.message, exc.code, {"Retry-After": "1"})
            else:
                await reply(503, "authentication is unavailable; see the server log", exc.code)
            return
        if caller is None and not _public(scope):
            await reply(
                401, "a valid API key is required: send 'Authorization: Bearer <key>'",
                "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"},
            )
            return
        if caller is not None:
            state["caller"] = caller

        receive = await self._bounded_body(scope, receive, headers, reply)
        if receive is None:
            return

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except StorageError as exc:
            if not exc.transient:
                log.exception("unhandled error on %s %s (request %s)", scope["method"], scope["path"], request_id)
            if not started:
                if exc.transient:  # nothing was written, a retry may pass (app/api/rest/errors.py)
                    await reply(503, exc.message, exc.code, {"Retry-After": "1"})
                else:
                    await reply(500, "Internal server error", "INTERNAL_ERROR")
        except Exception:
            log.exception("unhandled error on %s %s (request %s)", scope["method"], scope["path"], request_id)
            if not started:
                await reply(500, "Internal server error", "INTERNAL_ERROR")

    async def _bounded_body(
        self, scope: Scope, receive: Receive, headers: dict[str, str], reply: _Replier
    ) -> Receive | None:
        """Read the whole body up to the limit, then replay it; None when refused."""
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return receive
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await reply(400, "Content-Length is not a number", "BAD_REQUEST")
                return None
            if int(declared) > limit:
                await reply(413, f"the request body exceeds {limit} bytes", "REQUEST_TOO_LARGE")
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _replay(b"".join(chunks), receive, disconnected=True)
            body = message.get("body", b"")
            size += len(body)
            if size > limit:  # chunked uploads declare no length
                await reply(413, f"the request body exceeds {limit} bytes", "REQUEST_TOO_LARGE")
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                return _replay(b"".join(chunks), receive)


def _replay(body: bytes, receive: Receive, *, disconnected: bool = False) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if disconnected:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


class _Replier:
    """Sends a small JSON error carrying the request id."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        self.scope, self.receive, self.send, self.request_id = scope, receive, send, request_id

    async def __call__(self, status: int, error: str, code: str, headers: dict[str, Any] | None = None) -> None:
        response = JSONResponse(
            {"error": error, "code": code, "requestId": self.request_id},
            status_code=status,
            headers={"X-Request-ID": self.request_id, **(headers or {})},
        )
        await response(self.scope, self.receive, self.send)


def _clean_id(value: str) -> str:
    """A client's request id, if it is short and printable ASCII (it goes into logs)."""
    value = value[:64]
    return value if value.isascii() and value.isprintable() else ""


def _public(scope: Scope) -> bool:
    path = scope["path"]
    if path.startswith(PUBLIC_PREFIXES):
        return True
    # The playground page itself (a browser cannot send a bearer token to load it);
    # the queries it sends carry the header typed into its headers editor.
    return path == "/graphql" and scope["method"] == "GET" and b"query=" not in scope["query_string"]
