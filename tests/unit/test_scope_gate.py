"""The scope gate refuses to build a schema or an app that could skip it (app/api/scope.py).

The live proof that every field and route refuses another agent's key is
tests/api/test_scope_introspection.py; these are the build-time refusals.
"""

from __future__ import annotations

import pytest
import strawberry
from casegraph.api.auth import Role
from casegraph.api.schema import build_schema
from casegraph.api.scope import Scope, ScopeMissing, mark, refuse_unguarded, refuse_unscoped
from starlette.responses import PlainTextResponse
from starlette.routing import Route


@strawberry.input
class Item:
    agent_id: str
    content: str


@strawberry.input
class Loose:
    agent_id: str | None = None


def test_the_live_schema_has_a_scope_on_every_root_field():
    schema = build_schema()
    for root in (schema.query, schema.mutation):
        for f in root.__strawberry_definition__.fields:
            scopes = [e for e in f.extensions if isinstance(e, Scope)]
            assert len(scopes) == 1, f.name
            assert scopes[0].agent_arguments or scopes[0].owner or scopes[0].service, f.name
    fields = {f.python_name: f for f in schema.mutation.__strawberry_definition__.fields}
    # Agent ids inside inputs are found: a batch of inputs is checked item by item.
    assert [e.agent_arguments for e in fields["store_batch"].extensions] == [("inputs",)]
    assert [e.owner for e in fields["session_end"].extensions] == [("session_id", "session")]


def test_a_root_field_without_a_scope_refuses_to_build():
    @strawberry.type
    class Query:
        @strawberry.field
        def leak(self, agent_id: str) -> str:
            return agent_id

    with pytest.raises(ScopeMissing, match="leak"):
        refuse_unscoped(strawberry.Schema(query=Query))


@pytest.mark.parametrize("case", ["no agent", "optional agent", "optional agent in an input", "unknown owner"])
def test_a_scope_that_cannot_find_an_agent_refuses_to_build(case):
    # graphql-core re-raises a field's build error as a TypeError naming it.
    if case == "no agent":
        @strawberry.type
        class Query:
            @strawberry.field(extensions=[Scope(Role.READ)])
            def count(self, customer_id: str) -> int:
                return 0
    elif case == "optional agent":
        @strawberry.type
        class Query:
            @strawberry.field(extensions=[Scope(Role.READ)])
            def count(self, agent_id: str | None = None) -> int:
                return 0
    elif case == "optional agent in an input":
        @strawberry.type
        class Query:
            @strawberry.field(extensions=[Scope(Role.WRITE)])
            def put(self, input: Loose) -> int:
                return 0
    else:
        @strawberry.type
        class Query:
            @strawberry.field(extensions=[Scope(Role.READ, owner=("ticket_id", "ticket"))])
            def get(self, ticket_id: str) -> int:
                return 0

    why = {"no agent": "names no agent", "optional agent": "must be required",
           "optional agent in an input": "must be required", "unknown owner": "no known kind"}[case]
    with pytest.raises(TypeError, match=why):
        strawberry.Schema(query=Query)


def test_agents_in_inputs_and_service_wide_fields_build():
    @strawberry.type
    class Query:
        @strawberry.field(extensions=[Scope(Role.READ, service=True)])
        def agents(self) -> int:
            return 0

        @strawberry.field(extensions=[Scope(Role.WRITE)])
        def put(self, items: list[Item]) -> int:
            return len(items)

    schema = strawberry.Schema(query=Query)
    refuse_unscoped(schema)
    put = next(f for f in schema.query.__strawberry_definition__.fields if f.python_name == "put")
    assert put.extensions[0].agent_arguments == ("items",)


def test_an_unmarked_route_refuses_to_build():
    async def page(request):
        return PlainTextResponse("x")

    refuse_unguarded([Route("/fine", mark(page, "public: test"))])
    with pytest.raises(ScopeMissing, match="/v1/new"):
        refuse_unguarded([Route("/v1/new", lambda request: PlainTextResponse("x"))])
