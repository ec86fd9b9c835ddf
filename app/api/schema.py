"""The GraphQL schema: queries and mutations, each a thin call into the domain.

Every root field carries ``Scope(role)`` (app/api/scope.py): the caller's scope over each
agent the arguments name, or over the owner of the object it names by id, is checked
before the resolver runs, and the schema refuses to build with a root field that has no
``Scope``. Nested fields check again (``info.context.require``).
"""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from casegraph.api.auth import Role
from casegraph.api.blocking import run_blocking
from casegraph.api.context import Context
from casegraph.api.customer_context_types import CustomerContext
from casegraph.api.documents import known_documents
from casegraph.api.errors import ErrorCodes
from casegraph.api.inputs import PageLimit, PageOffset, RecallFilter, StoreMemoryInput
from casegraph.api.receipts import ErasureReceipt
from casegraph.api.scope import Scope, refuse_unscoped
from casegraph.api.ticket_schema import TicketMutation, TicketQuery
from casegraph.api.types import Customer, Memory, RecallHit, Session
from casegraph.ops.settings import Settings
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.scalars import JSON
from strawberry.types import Info


@strawberry.type
class Query(TicketQuery):
    @strawberry.field(description="The memories most relevant to a query, best first.", extensions=[Scope(Role.READ)])
    async def recall(
        self,
        info: Info[Context, None],
        agent_id: str,
        query: str,
        top_k: int = 5,
        filter: RecallFilter | None = None,
    ) -> list[RecallHit]:
        flt = filter.to_model() if filter is not None else None
        hits = await run_blocking(info.context.services.recall.recall, agent_id, query, top_k, flt)
        return [RecallHit.from_model(h) for h in hits]

    @strawberry.field(
        description="Wake-up context with no query: a customer's most important and most recent "
        "memories and open tickets.",
        extensions=[Scope(Role.READ)],
    )
    async def customer_context(
        self, info: Info[Context, None], agent_id: str, customer_id: str, limit: int = 10
    ) -> CustomerContext:
        found = await run_blocking(info.context.services.customer_context.customer_context, agent_id, customer_id, limit)
        return CustomerContext.from_model(found)

    @strawberry.field(extensions=[Scope(Role.READ)])
    async def memory(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Memory:
        return Memory.from_model(await run_blocking(info.context.services.memories.get, agent_id, str(id)))

    @strawberry.field(extensions=[Scope(Role.READ)])
    async def session(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Session:
        found = await run_blocking(info.context.services.memories.session_get, str(id), agent_id=agent_id)
        return Session.from_model(found)

    @strawberry.field(extensions=[Scope(Role.READ)])
    async def sessions(
        self, info: Info[Context, None], agent_id: str, active_only: bool = False,
        limit: PageLimit = 50, offset: PageOffset = 0,
    ) -> list[Session]:
        found = await run_blocking(
            info.context.services.memories.list_sessions,
            agent_id,
            active_only=active_only,
            limit=limit,
            offset=offset,
        )
        return [Session.from_model(s) for s in found]

    @strawberry.field(extensions=[Scope(Role.READ)])
    async def customer(self, info: Info[Context, None], agent_id: str, id: str) -> Customer:
        return Customer.from_model(await run_blocking(info.context.services.nodes.customer, agent_id, id))

    @strawberry.field(
        description="Everything stored about one customer, as JSON (a subject-access request). Admin keys only.",
        extensions=[Scope(Role.ADMIN)],
    )
    async def export_customer(self, info: Info[Context, None], agent_id: str, customer_id: str) -> JSON:
        s = info.context.services
        return await run_blocking(s.customer_data.export_customer, agent_id, customer_id)


@strawberry.type
class Mutation(TicketMutation):
    @strawberry.mutation(description="Remember one interaction.", extensions=[Scope(Role.WRITE)])
    async def store(self, info: Info[Context, None], input: StoreMemoryInput) -> Memory:
        stored = await run_blocking(info.context.services.memories.store, input.to_model())
        return Memory.from_model(stored)

    @strawberry.mutation(
        description="Remember several interactions: all are stored or none is.", extensions=[Scope(Role.WRITE)]
    )
    async def store_batch(self, info: Info[Context, None], inputs: list[StoreMemoryInput]) -> list[Memory]:
        stored = await run_blocking(
            info.context.services.memories.store_batch, [i.to_model() for i in inputs]
        )
        return [Memory.from_model(m) for m in stored]

    @strawberry.mutation(extensions=[Scope(Role.WRITE)])
    async def forget(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> bool:
        return await run_blocking(info.context.services.memories.forget, agent_id, str(id))

    @strawberry.mutation(extensions=[Scope(Role.WRITE)])
    async def session_start(
        self,
        info: Info[Context, None],
        agent_id: str,
        customer_id: str | None = None,
        metadata: JSON | None = None,
    ) -> Session:
        started = await run_blocking(
            info.context.services.memories.session_start, agent_id, customer_id, metadata
        )
        return Session.from_model(started)

    @strawberry.mutation(extensions=[Scope(Role.WRITE, owner=("session_id", "session"))])
    async def session_end(
        self,
        info: Info[Context, None],
        session_id: strawberry.ID,
        summary: str | None = None,
    ) -> Session:
        # Ending consolidates: the summary (given, or extractive) becomes a memory.
        memories = info.context.services.memories
        session = await run_blocking(memories.session_get, str(session_id))
        ended = await run_blocking(memories.session_end, str(session_id), summary, agent_id=session.agent_id)
        return Session.from_model(ended)

    @strawberry.mutation(
        description="Erase a customer: every memory, session, node, edge, vector and keyword entry "
        "of theirs. Returns counts per store. Admin keys only.",
        extensions=[Scope(Role.ADMIN)],
    )
    async def forget_customer(self, info: Info[Context, None], agent_id: str, customer_id: str) -> ErasureReceipt:
        s = info.context.services
        receipt = await run_blocking(s.customer_data.forget_customer, agent_id, customer_id)
        return ErasureReceipt.from_model(receipt)


def build_schema(
    settings: Settings | None = None, *, extensions: Sequence[type[SchemaExtension]] = ()
) -> strawberry.Schema:
    """The schema with the limits of ``settings`` (the defaults when None); ``extensions``
    (e.g. metrics) run outside ErrorCodes and see shaped errors."""
    settings = settings or Settings()
    chain: list = [
        *extensions,
        ErrorCodes,
        QueryDepthLimiter(max_depth=settings.max_query_depth),
        MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        MaxTokensLimiter(max_token_count=settings.max_tokens),
        known_documents(),
    ]
    if not settings.introspection:
        chain.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
    schema = strawberry.Schema(query=Query, mutation=Mutation, extensions=chain)
    refuse_unscoped(schema)
    return schema
