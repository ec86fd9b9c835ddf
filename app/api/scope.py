"""The scope gate: no GraphQL root field and no route reaches the domain without passing here.

app/api/auth.py decides whether a caller may act on an agent; this module finds what each
request names and asks it, before the resolver or handler runs:

- an agent named in the request (``agentId``, also inside inputs such as
  ``store(input:)`` and ``storeBatch(inputs:)``, or ``agent_id`` on the REST wire):
  ``authorize(caller, agent_id, role)``;
- an object named by its id alone (``sessionEnd(sessionId:)``, ``/v1/sessions/{id}``):
  its owner is looked up (``OWNERS``) and ``authorize_owned`` checks it, so another
  tenant's object does not exist for the caller;
- a field or route over the whole service: ``authorize_service``.

GraphQL: every root Query and Mutation field carries ``Scope(role)``. At schema build the
extension finds the arguments that carry agent ids; a field that names no agent must name
its object's owner (``owner=``) or be service-wide, and an optional agent argument is
refused. ``refuse_unscoped`` fails the build when a root field has no ``Scope``, so a
field added later cannot skip the check by forgetting it.

REST and the other routes: each endpoint is marked with the scope it was built with
(``mark``); ``refuse_unguarded`` fails the app build when a route has none. The Dakera
routes (app/api/rest/routes.py) call ``admit`` below, the same function GraphQL calls.

Ids looked up inside an agent that was checked (``memory(agentId:, id:)``, a
``sessionId`` in ``store(input:)``) are the domain's to match: it looks them up within
that agent only, and another agent's object is not found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import strawberry
from casegraph.api.auth import Caller, Role, authorize, authorize_owned, authorize_service
from casegraph.api.blocking import run_blocking
from casegraph.errors import SessionNotFound
from casegraph.services import Services
from strawberry.extensions import FieldExtension
from strawberry.types.base import StrawberryContainer, StrawberryOptional, has_object_definition
from strawberry.types.field import StrawberryField

AGENT = "agent_id"


class ScopeMissing(TypeError):
    """A field or route that could reach the domain without the scope check: the schema or
    app refuses to build."""


def _session_owner(services: Services, session_id: str) -> str:
    return services.memories.session_get(session_id).agent_id


# kind -> (the agent that owns an object of that kind, what a caller outside it is told)
OWNERS: dict[str, tuple[Callable[[Services, str], str], Callable[[str], Exception]]] = {
    "session": (_session_owner, lambda i: SessionNotFound(f"session {i!r} does not exist")),
}


def admit(
    caller: Caller,
    services: Services | None,
    role: Role,
    *,
    agents: Iterable[str] = (),
    owned: Iterable[tuple[str, str]] = (),
    service: bool = False,
) -> list[str]:
    """Raise unless ``caller`` holds ``role`` over every agent in ``agents``, over the owner
    of every ``(kind, id)`` in ``owned``, and (``service``) over all agents. Returns the
    owners' agent ids, in the order of ``owned``. Blocks when ``owned`` is not empty."""
    if service:
        authorize_service(caller, role)
    for agent_id in agents:
        authorize(caller, agent_id, role)
    owners = []
    for kind, object_id in owned:
        find, hidden = OWNERS[kind]
        if services is None:
            raise ScopeMissing(f"no services to find the owner of {kind} {object_id!r}")
        owner = find(services, object_id)
        authorize_owned(caller, owner, role, hidden(object_id))
        owners.append(owner)
    return owners


# -- GraphQL -----------------------------------------------------------------------------
def _unwrap(t: Any) -> tuple[Any, bool]:
    """The named type under lists and optionals, and whether the outermost was optional."""
    optional = isinstance(t, StrawberryOptional)
    while isinstance(t, StrawberryContainer):
        t = t.of_type
    return t, optional


def _carries_agent(t: Any, seen: frozenset[type] = frozenset()) -> bool:
    """True when input type ``t`` holds an agent id, directly or in a nested input.
    Refuses an optional one: a null would skip the check."""
    if not has_object_definition(t) or t in seen:
        return False
    definition = t.__strawberry_definition__
    if not definition.is_input:
        return False
    found = False
    for f in definition.fields:
        inner, optional = _unwrap(f.type)
        if f.python_name == AGENT:
            if optional:
                raise ScopeMissing(f"{definition.name}.{f.name}: an agent id must be required")
            found = True
        elif _carries_agent(inner, seen | {t}):
            if optional:
                raise ScopeMissing(f"{definition.name}.{f.name}: an input holding an agent id must be required")
            found = True
    return found


def _agents_in(value: Any) -> Iterator[str]:
    """Every agent id in an argument's value (an input object, a list of them...)."""
    if isinstance(value, list | tuple):
        for v in value:
            yield from _agents_in(v)
    elif has_object_definition(type(value)):
        for f in type(value).__strawberry_definition__.fields:
            v = getattr(value, f.python_name, None)
            if f.python_name == AGENT:
                yield v
            elif v is not None:
                yield from _agents_in(v)


class Scope(FieldExtension):
    """The scope check of one root field: ``role`` over every agent its arguments name.

    ``owner=("session_id", "session")``: the field names its object by id alone; the
    check is against the agent that owns it. ``service=True``: the field touches no one
    agent and needs ``role`` over all of them.
    """

    def __init__(self, role: Role, *, owner: tuple[str, str] | None = None, service: bool = False) -> None:
        self.role = role
        self.owner = owner
        self.service = service
        self.agent_arguments: tuple[str, ...] = ()
        self.field_name: str | None = None

    def apply(self, field: StrawberryField) -> None:
        if self.field_name is not None and self.field_name != field.python_name:
            raise ScopeMissing(f"one Scope serves {self.field_name!r} and {field.python_name!r}: give each its own")
        self.field_name = field.python_name
        found = []
        for arg in field.arguments:
            named, optional = _unwrap(arg.type)
            if arg.python_name == AGENT or _carries_agent(named):
                if optional:
                    raise ScopeMissing(f"{field.name}({arg.python_name}): an argument naming an agent must be required")
                found.append(arg.python_name)
        self.agent_arguments = tuple(found)
        names = {a.python_name for a in field.arguments}
        if self.owner is not None and (self.owner[0] not in names or self.owner[1] not in OWNERS):
            raise ScopeMissing(f"{field.name}: owner {self.owner} names no argument or no known kind")
        if not (found or self.owner or self.service):
            raise ScopeMissing(
                f"{field.name} names no agent: give it an agentId argument, Scope(owner=...) or Scope(service=True)"
            )

    def _check(self, info: strawberry.Info, kwargs: dict[str, Any]) -> tuple[Caller, list[str], list]:
        agents = [kwargs[a] for a in self.agent_arguments if a == AGENT]
        for a in self.agent_arguments:
            if a != AGENT:
                agents.extend(_agents_in(kwargs[a]))
        owned = [(self.owner[1], str(kwargs[self.owner[0]]))] if self.owner else []
        return info.context.caller, list(dict.fromkeys(agents)), owned

    def resolve(self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        caller, agents, owned = self._check(info, kwargs)
        admit(caller, info.context.services, self.role, agents=agents, owned=owned, service=self.service)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        caller, agents, owned = self._check(info, kwargs)
        # Agents first and off the thread pool: most calls name no object by id.
        admit(caller, None, self.role, agents=agents, service=self.service)
        if owned:
            await run_blocking(admit, caller, info.context.services, self.role, owned=owned)
        return await next_(source, info, **kwargs)


def refuse_unscoped(schema: strawberry.Schema) -> None:
    """Raise ``ScopeMissing`` naming every root Query/Mutation field without a ``Scope``."""
    missing = []
    for root in (schema.query, schema.mutation):
        if root is None:
            continue
        for f in root.__strawberry_definition__.fields:
            if sum(isinstance(e, Scope) for e in f.extensions) != 1:
                missing.append(f.name)
    if missing:
        raise ScopeMissing(f"root fields without exactly one Scope (app/api/scope.py): {', '.join(missing)}")


# -- routes ------------------------------------------------------------------------------
SCOPE_MARK = "__casegraph_scope__"


def mark(endpoint: Any, scope: str) -> Any:
    """Record on an endpoint how its caller is checked ("agent", "owner:session", "service",
    "graphql: per field", or "public: <why it shows no agent's data>")."""
    setattr(endpoint, SCOPE_MARK, scope)
    return endpoint


def refuse_unguarded(routes: Iterable[Any]) -> None:
    """Raise ``ScopeMissing`` naming every route whose endpoint (or mounted app) is unmarked."""
    missing = []
    for route in routes:
        target = getattr(route, "endpoint", None) or getattr(route, "app", None)
        if not getattr(target, SCOPE_MARK, None):
            missing.append(getattr(route, "path", repr(route)))
    if missing:
        raise ScopeMissing(f"routes without a scope (app/api/scope.py): {', '.join(missing)}")
