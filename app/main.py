"""create_app(settings): the Starlette app; its lifespan opens and closes the services."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

from app import __version__
from app.api import rest
from app.api.context import Context
from app.api.observability import HttpObservability, graphql_metrics, metrics_endpoint
from app.api.playground import ASSETS_DIR, playground_html
from app.api.schema import build_schema
from app.embeddings import SentenceTransformerEmbedder
from app.logs import bind_request_id
from app.metrics import Metrics
from app.services import Services
from app.settings import Settings

log = logging.getLogger("casegraph")

ASSETS_PATH = "/playground-assets"
PUBLIC_PATHS = ("/health", ASSETS_PATH)


class CaseGraphView(GraphQL):
    """Strawberry's ASGI view with our context and the offline playground page."""

    def __init__(self, services_ref: dict[str, Services], metrics: Metrics) -> None:
        super().__init__(
            build_schema(extensions=[graphql_metrics(metrics)]),
            graphql_ide="graphiql",
            allow_queries_via_get=True,
        )
        self._services_ref = services_ref

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return Context(
            services=self._services_ref["services"],
            request_id=request.scope.get("state", {}).get("request_id", uuid.uuid4().hex),
            request=request,
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:  # type: ignore[override]
        root = request.scope.get("root_path", "")
        return HTMLResponse(playground_html(graphql_path=f"{root}/graphql", assets_path=f"{root}{ASSETS_PATH}"))


class RequestIdAndAuth:
    """Tags each request with an id; with an API key set, demands ``Authorization: Bearer``."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        bind_request_id(request_id)
        if self.api_key is not None and not self._public(scope) and not self._authorised(headers):
            response = JSONResponse(
                {"error": "a valid API key is required: send 'Authorization: Bearer <key>'",
                 "code": "UNAUTHENTICATED"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer", "X-Request-ID": request_id},
            )
            await response(scope, receive, send)
            return

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)

    @staticmethod
    def _public(scope: Scope) -> bool:
        path = scope["path"]
        if path.startswith(PUBLIC_PATHS):
            return True
        # The playground page itself (a browser cannot send a bearer token to load it);
        # the queries it sends carry the header typed into its headers editor.
        return path == "/graphql" and scope["method"] == "GET" and b"query=" not in scope["query_string"]

    def _authorised(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key or b"")


def create_app(
    settings: Settings, services: Services | None = None, metrics: Metrics | None = None
) -> Starlette:
    """Build the app. With ``services`` given (tests), the lifespan does not open its own."""
    ref: dict[str, Services] = {}
    metrics = metrics or Metrics()
    metrics.watch(lambda: ref.get("services"))

    def open_services() -> Services:
        embedder = metrics.instrument(SentenceTransformerEmbedder(settings.embedding_model))
        return Services.open(settings, embedder=embedder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services is None
        ref["services"] = services or await asyncio.to_thread(open_services)
        app.state.services = ref["services"]
        chores = asyncio.create_task(_housekeeping(ref["services"], settings))
        log.info("CaseGraph %s ready on %s", __version__, settings.data_dir)
        try:
            yield
        finally:
            chores.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chores
            if owned:
                await asyncio.to_thread(ref["services"].close)
            else:
                await asyncio.to_thread(ref["services"].vectors.save)

    async def health(request: Request) -> JSONResponse:
        ready = "services" in ref
        body = {"status": "healthy" if ready else "starting", "version": __version__}
        if ready:
            body["schemaVersion"] = ref["services"].graph.schema_version
        return JSONResponse(body, status_code=200 if ready else 503)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "version": __version__})

    view = CaseGraphView(ref, metrics)
    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/health/ready", health),
            Route("/health/live", live),
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/metrics", metrics_endpoint(metrics)),
            Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIR), name="playground-assets"),
            *rest.routes(),  # the Dakera-compatible REST API (app/api/rest)
        ],
        middleware=[
            Middleware(HttpObservability, metrics=metrics),
            Middleware(RequestIdAndAuth, api_key=settings.api_key),
        ],
        exception_handlers=rest.exception_handlers(),
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app


async def _housekeeping(services: Services, settings: Settings) -> None:
    """Save dirty vector indexes and sweep expired memories, until cancelled."""
    while True:
        await asyncio.sleep(settings.vector_save_interval_s)
        try:
            swept = await asyncio.to_thread(services.memories.sweep_expired)
            if swept:
                log.info("swept %d expired memories", swept)
            await asyncio.to_thread(services.vectors.save)
        except Exception:
            log.exception("housekeeping failed; retrying next round")
