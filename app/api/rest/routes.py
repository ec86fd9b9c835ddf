"""The Dakera-compatible routes: each one reads the wire format, calls the same domain
service the GraphQL resolvers call (MemoryService, RecallService) and writes the answer.

A handler cannot be reached without the scope check: each is built with ``scoped(role,
source)``, which reads the agent id from where the route carries it (the body, the query
string, the path) or the session the path names, admits the caller through
``casegraph.api.scope.admit`` (the function the GraphQL fields call) and only then runs the
handler with the ``Grant``. The app refuses to start with a route that was not built so.

No storage or ranking happens here. README "Coming from Dakera" lists what is served;
app/api/rest/errors.py holds the error answers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

from casegraph.api.auth import NOBODY, Role
from casegraph.api.blocking import run_blocking
from casegraph.api.rest.errors import RestError, error_response
from casegraph.api.rest.wire import (
    Fields,
    QueryFields,
    hit_json,
    memory_json,
    read_body,
    session_json,
    unix,
)
from casegraph.api.scope import admit, mark
from casegraph.domain.models import RecallFilter, StoreRequest
from casegraph.domain.recall import MAX_ASSOCIATED
from casegraph.domain.validation import MAX_METADATA_BYTES, check_object_id
from casegraph.errors import (
    CaseGraphError,
    InvalidId,
    MemoryNotFound,
    NotFound,
    SessionEnded,
    SessionNotFound,
)
from casegraph.services import Services
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]

SESSION_MEMORIES_PAGE = 50
MAX_PREVIEW_CHARS = 10_000
_NO_RERANKER = "CaseGraph ranks with its own hybrid scoring (see README: How recall ranks)"
_NO_NEIGHBOURHOOD = "CaseGraph returns no neighbourhood context; memories holds the ranked results only"


def endpoint(fn: Handler) -> Handler:
    """Turn every exception into Dakera's JSON error answer."""

    @functools.wraps(fn)
    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as exc:  # mapped, or masked and logged, by error_response
            return error_response(request, exc)

    return handler


def services_of(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise RestError(503, "SERVICE_UNAVAILABLE", "CaseGraph is starting", {"Retry-After": "1"})
    return services


async def body_of(request: Request) -> Fields:
    s = services_of(request).settings
    # The largest valid batch, with room for JSON escapes: anything bigger cannot be valid.
    limit = s.max_batch_size * (4 * s.max_content_chars + MAX_METADATA_BYTES + 1024) + 65_536
    return await read_body(request, limit)


class Grant(NamedTuple):
    """What the scope check let through: the agent the handler may act on (a session's
    owner, for a route naming a session) and the fields the request was read from (the
    JSON body for a body-carrying method, else the query string)."""

    agent_id: str
    fields: Fields


# Where a route carries the agent it acts on; "session": the session in its path.
Source = Literal["body", "query", "path_or_query", "session"]
Gated = Callable[[Request, Grant], Awaitable[Response]]


def scoped(role: Role, source: Source) -> Callable[[Gated], Handler]:
    """The endpoint for ``handler``: it runs only once the caller holds ``role`` over the
    agent the request names at ``source`` (app/api/scope.py decides)."""

    def wrap(handler: Gated) -> Handler:
        @endpoint
        @functools.wraps(handler)
        async def gated(request: Request) -> Response:
            return await handler(request, await _admit(request, role, source))

        return mark(gated, "owner:session" if source == "session" else f"agent from {source}")

    return wrap


async def _admit(request: Request, role: Role, source: Source) -> Grant:
    caller = request.scope.get("state", {}).get("caller", NOBODY)
    fields = await body_of(request) if request.method in ("POST", "PUT", "PATCH") else QueryFields(request)
    if source == "session":
        session_id = path_id(request.path_params["session_id"], SessionNotFound, "session")
        [owner] = await run_blocking(admit, caller, services_of(request), role, owned=[("session", session_id)])
        return Grant(owner, fields)
    agent_id = request.path_params.get("agent_id") if source == "path_or_query" else None
    if agent_id is None:
        named_in = fields if source == "body" or isinstance(fields, QueryFields) else QueryFields(request)
        agent_id = named_in.text("agent_id", required=True)
    admit(caller, None, role, agents=[agent_id])
    return Grant(agent_id, fields)


def answer(body: Any, *fields: Fields, status: int = 200) -> JSONResponse:
    warnings = [w for f in fields for w in f.warnings()]
    if isinstance(body, dict):
        body = {**body, "warnings": warnings}
    return JSONResponse(body, status)


def path_id(value: str, missing: type[NotFound], what: str) -> str:
    """An id in the path that is not even well formed names nothing: 404, not 400."""
    try:
        return check_object_id(value, what)
    except InvalidId:
        raise missing(f"{what} {value!r} does not exist") from None


# -- memories --------------------------------------------------------------------------
def store_request(f: Fields, agent_id: str) -> StoreRequest:
    """One memory of a store or batch store, in the domain's terms."""
    f.refuse("attachment_ref", "attachments")
    f.refuse("id", "caller-chosen memory ids")
    f.ignore("lang", "CaseGraph extracts entities from English text")
    expires_at = f.time("expires_at")
    ttl_seconds = f.integer("ttl_seconds")
    return StoreRequest(
        agent_id=agent_id,
        content=f.text("content") or "",
        importance=0.5 if (i := f.number("importance")) is None else i,
        tags=tuple(f.texts("tags") or ()),
        session_id=f.text("session_id"),
        customer_id=f.text("customer_id"),
        memory_type=f.text("memory_type") or "episodic",
        metadata=f.mapping("metadata"),
        created_at=f.time("event_time"),
        # Dakera: an explicit expiry wins over a TTL.
        ttl_seconds=None if expires_at is not None else ttl_seconds,
        expires_at=expires_at,
        allow_ended_session=True,
    )


async def session_states(services: Services, session_ids: set[str]) -> dict[str, str]:
    states = {}
    for session_id in sorted(session_ids):
        session = await run_blocking(services.memories.session_get, session_id)
        states[session_id] = "active" if session.active else "ended"
    return states


@scoped(Role.WRITE, "body")
async def store(request: Request, grant: Grant) -> Response:
    f, agent_id = grant.fields, grant.agent_id
    services = services_of(request)
    stored = await run_blocking(services.memories.store, store_request(f, agent_id))
    body: dict[str, Any] = {"memory": memory_json(stored)}
    if stored.session_id:
        body["session_state"] = (await session_states(services, {stored.session_id}))[stored.session_id]
    return answer(body, f)


@scoped(Role.WRITE, "body")
async def store_batch(request: Request, grant: Grant) -> Response:
    f, agent_id = grant.fields, grant.agent_id
    services = services_of(request)
    f.ignore("lang", "CaseGraph extracts entities from English text")
    raw_items = f.items("memories")
    items = [Fields(m, prefix=f"memories[{i}].", what=f"memories[{i}]") for i, m in enumerate(raw_items)]
    requests = [store_request(item, agent_id) for item in items]
    try:
        stored = await run_blocking(services.memories.store_batch, requests)
    except CaseGraphError as exc:
        exc.message = exc.message.replace("inputs[", "memories[", 1)
        raise
    states = await session_states(services, {m.session_id for m in stored if m.session_id})
    body = {
        "stored": [
            {"id": m.id, "content": m.content, "agent_id": m.agent_id, "tags": list(m.tags),
             "importance": m.importance, "created_at": unix(m.created_at)}
            for m in stored
        ],
        "stored_count": len(stored),
        "ended_sessions": [s for s, state in states.items() if state == "ended"],
        "warnings": [*f.warnings(), *_item_warnings(items)],
    }
    return JSONResponse(body)


def _item_warnings(items: list[Fields]) -> list[str]:
    """One line per distinct warning, with how many items it concerns."""
    counts: dict[str, int] = {}
    for item in items:
        for w in item.warnings():
            generic = w.replace(item.prefix, "memories[].", 1)
            counts[generic] = counts.get(generic, 0) + 1
    return [f"{w} (in {n} item{'s' if n > 1 else ''})" for w, n in counts.items()]


@scoped(Role.READ, "body")
async def recall(request: Request, grant: Grant) -> Response:
    f, agent_id = grant.fields, grant.agent_id
    services = services_of(request)
    memory_type = f.text("memory_type")
    flt = RecallFilter(
        session_id=f.text("session_id"),
        customer_id=f.text("customer_id"),
        tags=tuple(f.texts("tags") or ()),
        since=f.time("since"),
        until=f.time("until"),
        min_importance=f.number("min_importance"),
        memory_types=(memory_type,) if memory_type is not None else (),
    )
    include_associated = bool(f.flag("include_associated"))
    cap = f.integer("associated_memories_cap")
    depth = f.integer("associated_memories_depth")
    for name in ("routing", "rerank", "fusion", "vector_weight", "iterations", "rerank_candidates"):
        f.ignore(name, _NO_RERANKER)
    for name in ("neighborhood", "neighborhood_mode"):
        f.ignore(name, _NO_NEIGHBOURHOOD)
    f.ignore("associated_memories_min_weight", "CaseGraph's graph links carry no weights")
    f.ignore("include_summaries", "session summaries are kept on the session, never recalled")
    f.ignore("lang", "CaseGraph reads queries as English")
    top_k = 5 if (k := f.integer("top_k")) is None else k

    started = time.perf_counter()
    hits = await run_blocking(services.recall.recall, agent_id, f.text("query") or "", top_k, flt)
    body: dict[str, Any] = {"memories": [hit_json(h) for h in hits]}
    if include_associated:
        linked = await run_blocking(
            services.recall.associated, agent_id, [h.memory.id for h in hits],
            depth=1 if depth is None else depth, limit=MAX_ASSOCIATED if cap is None else cap,
        )
        body["associated_memories"] = [{"memory": memory_json(a.memory), "depth": a.depth} for a in linked]
    body["search_time_ms"] = round((time.perf_counter() - started) * 1000)
    return answer(body, f)


@scoped(Role.READ, "query")
async def get_memory(request: Request, grant: Grant) -> Response:
    q, agent_id = grant.fields, grant.agent_id
    memory_id = path_id(request.path_params["memory_id"], MemoryNotFound, "memory")
    found = await run_blocking(services_of(request).memories.get, agent_id, memory_id)
    return answer(memory_json(found), q)


@scoped(Role.WRITE, "query")
async def update_memory(request: Request, grant: Grant) -> Response:
    # The agent rides in the query string, the changes in the body.
    q, f, agent_id = QueryFields(request), grant.fields, grant.agent_id
    q.text("agent_id")
    memory_id = path_id(request.path_params["memory_id"], MemoryNotFound, "memory")
    f.ignore("lang", "CaseGraph extracts entities from English text")
    updated = await run_blocking(
        services_of(request).memories.update, agent_id, memory_id,
        content=f.text("content"), importance=f.number("importance"), tags=f.texts("tags"),
        memory_type=f.text("memory_type"), metadata=f.mapping("metadata"),
    )
    return answer(memory_json(updated), q, f)


@scoped(Role.WRITE, "body")
async def forget(request: Request, grant: Grant) -> Response:
    f, agent_id = grant.fields, grant.agent_id
    ids = f.texts("memory_ids")
    if ids is None:
        raise RestError(400, "INVALID_REQUEST", "field 'memory_ids' is required")
    well_formed = [i for i in ids if _well_formed(i)]
    if ids and not well_formed:  # ids that cannot exist are unknown, like a path id
        raise MemoryNotFound(f"memory {ids[0]!r} does not exist")
    deleted = await run_blocking(services_of(request).memories.forget_many, agent_id, well_formed)
    return answer({"deleted_count": len(deleted)}, f)


def _well_formed(memory_id: str) -> bool:
    try:
        check_object_id(memory_id, "id")
    except InvalidId:
        return False
    return True


# -- sessions ----------------------------------------------------------------------------
@scoped(Role.WRITE, "body")
async def start_session(request: Request, grant: Grant) -> Response:
    f, agent_id = grant.fields, grant.agent_id
    f.ignore("idle_timeout_secs", "CaseGraph sessions stay open until ended")
    started = await run_blocking(
        services_of(request).memories.session_start, agent_id, f.text("customer_id"), f.mapping("metadata"),
    )
    return answer({"session": session_json(started)}, f)


@scoped(Role.WRITE, "session")
async def end_session(request: Request, grant: Grant) -> Response:
    f = grant.fields
    session_id = request.path_params["session_id"]
    f.ignore("auto_summarize", "CaseGraph does not write summaries; send 'summary'")
    memories = services_of(request).memories
    try:
        ended = await run_blocking(memories.session_end, session_id, f.text("summary"), agent_id=grant.agent_id)
    except SessionEnded:
        # Dakera: ending an ended session answers its persisted state.
        ended = await run_blocking(memories.session_get, session_id)
    return answer({"session": session_json(ended)}, f)


@scoped(Role.READ, "session")
async def get_session(request: Request, grant: Grant) -> Response:
    found = await run_blocking(
        services_of(request).memories.session_get, request.path_params["session_id"], agent_id=grant.agent_id
    )
    return answer({"session": session_json(found)}, grant.fields)


@scoped(Role.READ, "path_or_query")
async def list_sessions(request: Request, grant: Grant) -> Response:
    q, agent_id = grant.fields, grant.agent_id
    found = await run_blocking(
        services_of(request).memories.list_sessions, agent_id,
        active_only=bool(q.flag("active_only")),
        limit=50 if (n := q.integer("limit")) is None else n,
        offset=q.integer("offset") or 0,
    )
    return JSONResponse([session_json(s) for s in found])  # the SDK expects a bare array


@scoped(Role.READ, "session")
async def session_memories(request: Request, grant: Grant) -> Response:
    q = grant.fields
    session_id = request.path_params["session_id"]
    preview = q.integer("content_preview_chars")
    if preview is not None and not 1 <= preview <= MAX_PREVIEW_CHARS:
        raise RestError(400, "INVALID_REQUEST",
                        f"content_preview_chars must be between 1 and {MAX_PREVIEW_CHARS}, got {preview}")
    found = await run_blocking(
        services_of(request).memories.session_memories, session_id, agent_id=grant.agent_id,
        limit=SESSION_MEMORIES_PAGE if (n := q.integer("limit")) is None else n,
        offset=q.integer("offset") or 0,
    )
    return answer({"memories": [memory_json(m, preview) for m in found]}, q)


# -- agents ------------------------------------------------------------------------------
@scoped(Role.READ, "path_or_query")
async def wake_up(request: Request, grant: Grant) -> Response:
    q = grant.fields
    q.ignore("include_derived", "CaseGraph stores no derived sub-memories")
    woken = await run_blocking(
        services_of(request).recall.wake_up, grant.agent_id,
        20 if (n := q.integer("top_n")) is None else n,
        0.0 if (m := q.number("min_importance")) is None else m,
    )
    body = {
        "agent_id": grant.agent_id,
        "memories": [memory_json(m) for m in woken.memories],
        "total_available": woken.total_available,
    }
    return answer(body, q)


def routes() -> list[Route]:
    """The Dakera-compatible routes, for the app's route list (same port as GraphQL)."""
    return [
        Route("/v1/memory/store", store, methods=["POST"]),
        Route("/v1/memories/store/batch", store_batch, methods=["POST"]),
        Route("/v1/memory/recall", recall, methods=["POST"]),
        Route("/v1/memory/get/{memory_id}", get_memory, methods=["GET"]),
        Route("/v1/memory/update/{memory_id}", update_memory, methods=["PUT"]),
        Route("/v1/memory/forget", forget, methods=["POST"]),
        Route("/v1/sessions/start", start_session, methods=["POST"]),
        Route("/v1/sessions", list_sessions, methods=["GET"]),
        Route("/v1/sessions/{session_id}", get_session, methods=["GET"]),
        Route("/v1/sessions/{session_id}/end", end_session, methods=["POST"]),
        Route("/v1/sessions/{session_id}/memories", session_memories, methods=["GET"]),
        Route("/v1/agents/{agent_id}/sessions", list_sessions, methods=["GET"]),
        Route("/v1/agents/{agent_id}/wake-up", wake_up, methods=["GET"]),
    ]
