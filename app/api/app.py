"""create_app(settings): the Starlette app; its lifespan opens and closes the services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator

from casegraph import __version__
from casegraph.api import rest
from casegraph.api.admin import admin_routes, service_wide
from casegraph.api.auth import NOBODY, Authenticator
from casegraph.api.blocking import run_blocking
from casegraph.api.context import Context
from casegraph.api.middleware import RequestGate
from casegraph.api.observability import HttpObservability, graphql_metrics, metrics_endpoint
from casegraph.api.playground import ASSETS_DIR, playground_html
from casegraph.api.schema import build_schema
from casegraph.api.scope import mark, refuse_unguarded
from casegraph.ops.keys import open_key_store
from casegraph.ops.metrics import Metrics
from casegraph.ops.settings import Settings
from casegraph.services import Services
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.asgi import GraphQL

log = logging.getLogger("casegraph")

ASSETS_PATH = "/playground-assets"


class CaseGraphView(GraphQL):
    """Strawberry's ASGI view with our context and the offline playground page."""

    def __init__(self, services_ref: dict[str, Services], metrics: Metrics, settings: Settings | None = None) -> None:
        super().__init__(
            build_schema(settings, extensions=[graphql_metrics(metrics)]),
            graphql_ide="graphiql" if settings is None or settings.introspection else None,
            allow_queries_via_get=True,
        )
        self._services_ref = services_ref

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        state = request.scope.get("state", {})
        return Context(
            services=self._services_ref["services"],
            request_id=state.get("request_id", uuid.uuid4().hex),
            request=request,
            caller=state.get("caller", NOBODY),
        )

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry answers 400 to a JSONDecodeError only; bytes that are not UTF-8, JSON
        # nested thousands deep, or a body that is not an object (null, 5, [1]) would
        # otherwise end in a 500.
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, RecursionError) as exc:
            raise json.JSONDecodeError(f"unreadable JSON: {type(exc).__name__}", "", 0) from exc
        if not isinstance(body, dict):  # (answered as "Unable to parse request body as JSON")
            raise json.JSONDecodeError("the request body must be a JSON object", "", 0)
        return body

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:  # type: ignore[override]
        root = request.scope.get("root_path", "")
        return HTMLResponse(playground_html(graphql_path=f"{root}/graphql", assets_path=f"{root}{ASSETS_PATH}"))


def create_app(
    settings: Settings, services: Services | None = None, metrics: Metrics | None = None
) -> Starlette:
    """Build the app. With ``services`` given (tests), the lifespan does not open its own."""
    ref: dict[str, Services] = {}
    metrics = metrics or Metrics()
    metrics.watch(lambda: ref.get("services"))

    def open_services() -> Services:
        return Services.open(settings, wrap_embedder=metrics.instrument)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services is None
        ref["services"] = services or await run_blocking(open_services)
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
                await run_blocking(ref["services"].close)
            else:
                await run_blocking(ref["services"].save)

    async def health(request: Request) -> JSONResponse:
        ready = "services" in ref
        body = {"status": "healthy" if ready else "starting", "version": __version__}
        if ready:
            body["schemaVersion"] = ref["services"].schema_version
        return JSONResponse(body, status_code=200 if ready else 503)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "version": __version__})

    view = CaseGraphView(ref, metrics, settings)
    authenticator = Authenticator(settings.api_key, open_key_store(settings))
    app = Starlette(
        routes=[
            Route("/health", mark(health, "public: status and version only")),
            Route("/health/ready", health),
            Route("/health/live", mark(live, "public: status and version only")),
            Route("/graphql", mark(view, "graphql: Scope on every root field"), methods=["GET", "POST"]),
            # Metrics name every agent: only keys over all agents may read them.
            Route("/metrics", service_wide(metrics_endpoint(metrics))),
            Mount(ASSETS_PATH, app=mark(StaticFiles(directory=ASSETS_DIR), "public: the playground's files"),
                  name="playground-assets"),
            *rest.routes(),  # the Dakera-compatible REST API (app/api/rest)
            *admin_routes(ref),
        ],
        middleware=[
            Middleware(HttpObservability, metrics=metrics),
            Middleware(RequestGate, authenticator=authenticator, max_body_bytes=settings.max_body_bytes),
        ],
        exception_handlers=rest.exception_handlers(),
        lifespan=lifespan,
    )
    refuse_unguarded(app.routes)  # every route says how its caller is checked
    app.state.metrics = metrics
    return app


async def _housekeeping(services: Services, settings: Settings) -> None:
    """Save dirty vector indexes, sweep expired memories and end idle sessions, until cancelled."""
    while True:
        await asyncio.sleep(settings.vector_save_interval_s)
        try:
            swept = await run_blocking(services.memories.sweep_expired)
            if swept:
                log.info("swept %d expired memories", swept)
            ended = await run_blocking(services.memories.end_idle_sessions)
            if ended:
                log.info("ended %d idle sessions", len(ended))
            await run_blocking(services.save)
        except Exception:
            log.exception("housekeeping failed; retrying next round")
