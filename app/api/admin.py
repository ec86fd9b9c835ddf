"""Operator endpoints (plain HTTP + JSON, admin keys over all agents only).

    POST /admin/backup      a consistent snapshot of the live data, streamed as a tar
                            (``casegraph backup --to DIR`` calls this)
    GET  /admin/integrity   does each agent's vector index hold exactly its memories?

``service_wide`` guards other routes that see every agent (``/metrics`` names them all).
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from casegraph.api.auth import NOBODY, Role, authorize_service
from casegraph.api.blocking import run_blocking
from casegraph.api.scope import mark
from casegraph.errors import CaseGraphError, Forbidden
from casegraph.ops import backup
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

log = logging.getLogger("casegraph.admin")


def admin_routes(services_ref: dict[str, Any]) -> list[Route]:
    # A thread lock: the stream that releases it runs in a worker thread.
    one_backup = threading.Lock()

    async def guarded(request: Request) -> JSONResponse | None:
        try:
            authorize_service(request.scope.get("state", {}).get("caller", NOBODY))
        except Forbidden as exc:
            return _error(403, exc, request)
        if "services" not in services_ref:
            return JSONResponse({"error": "starting", "code": "UNAVAILABLE"}, status_code=503)
        return None

    async def backup_endpoint(request: Request) -> Response:
        refused = await guarded(request)
        if refused is not None:
            return refused
        services = services_ref["services"]
        if not one_backup.acquire(blocking=False):
            return JSONResponse({"error": "a backup is already running", "code": "BACKUP_RUNNING"}, status_code=409)
        staging = services.settings.data_dir / "backups-in-progress"
        work = staging / uuid.uuid4().hex
        finish = _Once(lambda: (shutil.rmtree(work, ignore_errors=True), one_backup.release()))
        try:
            # Left over from a backup whose server died mid-stream.
            await run_blocking(shutil.rmtree, staging, ignore_errors=True)
            manifest = await run_blocking(backup.snapshot, services, work)
        except CaseGraphError as exc:
            finish()
            return _error(500, exc, request)
        except BaseException:
            finish()
            raise
        log.info("backup taken: %d memories, %d files", manifest["memories"], len(manifest["files"]))

        def stream() -> Iterator[bytes]:
            try:
                yield from backup.tar_stream(work)
            finally:
                finish()

        return StreamingResponse(
            stream(),
            media_type="application/x-tar",
            headers={"X-CaseGraph-Memories": str(manifest["memories"])},
            background=BackgroundTask(finish),  # also when the client went away mid-stream
        )

    async def integrity_endpoint(request: Request) -> JSONResponse:
        refused = await guarded(request)
        if refused is not None:
            return refused
        services = services_ref["services"]
        report = await run_blocking(services.vector_report)
        return JSONResponse(report)

    return [
        Route("/admin/backup", mark(backup_endpoint, "service"), methods=["POST"]),
        Route("/admin/integrity", mark(integrity_endpoint, "service"), methods=["GET"]),
    ]


def service_wide(endpoint: Callable[[Request], Any], role: Role = Role.READ) -> Callable[[Request], Any]:
    """Wrap a route so only keys scoped to every agent (with ``role``) reach it."""

    async def guarded(request: Request) -> Response:
        try:
            authorize_service(request.scope.get("state", {}).get("caller", NOBODY), role)
        except Forbidden as exc:
            return _error(403, exc, request)
        return await endpoint(request)

    return mark(guarded, "service")


def _error(status: int, exc: CaseGraphError, request: Request) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    if status >= 500:
        log.error("admin request %s failed: %s", request_id, exc.message)
        return JSONResponse({"error": "Internal server error", "code": "INTERNAL_ERROR", "requestId": request_id},
                            status_code=status)
    return JSONResponse({"error": exc.message, "code": exc.code, "requestId": request_id}, status_code=status)


class _Once:
    """Runs a clean-up exactly once, whichever of its callers comes first."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._fn()
