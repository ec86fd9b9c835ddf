"""The GraphQL schema: queries and mutations, each a thin call into the domain.

Every resolver first checks the caller's scope over the agent it touches
(``info.context.require(agent_id, Role.X)``, see app/auth.py); nested fields check again.
"""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
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

from app import customer_data
from app.api.context import Context, run_blocking
from app.api.context_types import CustomerContext
from app.api.documents import known_documents
from app.api.errors import ErrorCodes
from app.api.receipts import ErasureReceipt
from app.api.ticket_schema import TicketMutation, TicketQuery
from app.api.types import (
    Customer,
    Memory,
    RecallFilter,
    RecallHit,
    Session,
    StoreMemoryInput,
)
from app.auth import Role
from app.errors import CustomerNotFound, Forbidden, InvalidInput, SessionNotFound
from app.memory import check_agent_id, check_customer_id
from app.settings import Settings

# Paging deeper than this is a scan, not a page (and Kùzu 0.11.3 crashes on huge SKIPs).
MAX_OFFSET = 10_000


@strawberry.type
class Query(TicketQuery):
    @strawberry.field(description="The memories most relevant to a query, best first.")
    async def recall(
        self,
        info: Info[Context, None],
        agent_id: str,
        query: str,
        top_k: int = 5,
        filter: RecallFilter | None = None,
    ) -> list[RecallHit]:
        info.context.require(agent_id, Role.READ)
        flt = filter.to_model() if filter is not None else None
        hits = await run_blocking(info.context.services.recall.recall, agent_id, query, top_k, flt)
        return [RecallHit.from_model(h) for h in hits]

    @strawberry.field(
        description="Wake-up context with no query: a customer's most important and most recent "
        "memories and open tickets."
    )
    async def customer_context(
        self, info: Info[Context, None], agent_id: str, customer_id: str, limit: int = 10
    ) -> CustomerContext:
        from app.customer_context import customer_context

        info.context.require(agent_id, Role.READ)
        s = info.context.services
        found = await run_blocking(
            customer_context, s.graph, s.settings, s.memories.clock(), agent_id, customer_id, limit
        )
        return CustomerContext.from_model(found)

    @strawberry.field
    async def memory(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Memory:
        info.context.require(agent_id, Role.READ)
        return Memory.from_model(await run_blocking(info.context.services.memories.get, agent_id, str(id)))

    @strawberry.field
    async def session(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Session:
        info.context.require(agent_id, Role.READ)
        found = await run_blocking(info.context.services.memories.session_get, str(id), agent_id=agent_id)
        return Session.from_model(found)

    @strawberry.field
    async def sessions(
        self, info: Info[Context, None], agent_id: str, active_only: bool = False, limit: int = 50, offset: int = 0
    ) -> list[Session]:
        info.context.require(agent_id, Role.READ)
        if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}", code="INVALID_OFFSET")
        found = await run_blocking(
            info.context.services.memories.list_sessions,
            agent_id,
            active_only=active_only,
            limit=min(max(limit, 1), 1000),
            offset=offset,
        )
        return [Session.from_model(s) for s in found]

    @strawberry.field
    async def customer(self, info: Info[Context, None], agent_id: str, id: str) -> Customer:
        info.context.require(agent_id, Role.READ)
        check_agent_id(agent_id)
        customer_id = check_customer_id(id)
        found = await run_blocking(info.context.services.graph.get_customer, agent_id, customer_id)
        if found is None:
            raise CustomerNotFound(f"customer {id!r} does not exist")
        return Customer.from_model(found)

    @strawberry.field(
        description="Everything stored about one customer, as JSON (a subject-access request). Admin keys only."
    )
    async def export_customer(self, info: Info[Context, None], agent_id: str, customer_id: str) -> JSON:
        info.context.require(agent_id, Role.ADMIN)
        s = info.context.services
        return await run_blocking(customer_data.export_customer, s.graph, agent_id, customer_id, s.memories.clock())


@strawberry.type
class Mutation(TicketMutation):
    @strawberry.mutation(description="Remember one interaction.")
    async def store(self, info: Info[Context, None], input: StoreMemoryInput) -> Memory:
        info.context.require(input.agent_id, Role.WRITE)
        stored = await run_blocking(info.context.services.memories.store, input.to_model())
        return Memory.from_model(stored)

    @strawberry.mutation(description="Remember several interactions: all are stored or none is.")
    async def store_batch(self, info: Info[Context, None], inputs: list[StoreMemoryInput]) -> list[Memory]:
        for agent_id in dict.fromkeys(i.agent_id for i in inputs):
            info.context.require(agent_id, Role.WRITE)
        stored = await run_blocking(
            info.context.services.memories.store_batch, [i.to_model() for i in inputs]
        )
        return [Memory.from_model(m) for m in stored]

    @strawberry.mutation
    async def forget(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> bool:
        info.context.require(agent_id, Role.WRITE)
        return await run_blocking(info.context.services.memories.forget, agent_id, str(id))

    @strawberry.mutation
    async def session_start(
        self,
        info: Info[Context, None],
        agent_id: str,
        customer_id: str | None = None,
        metadata: JSON | None = None,
    ) -> Session:
        info.context.require(agent_id, Role.WRITE)
        started = await run_blocking(
            info.context.services.memories.session_start, agent_id, customer_id, metadata
        )
        return Session.from_model(started)

    @strawberry.mutation
    async def session_end(
        self,
        info: Info[Context, None],
        session_id: strawberry.ID,
        summary: str | None = None,
    ) -> Session:
        # Ending consolidates: the summary (given, or extractive) becomes a memory.
        memories = info.context.services.memories
        session = await run_blocking(memories.session_get, str(session_id))
        caller = info.context.caller
        if not caller.may(session.agent_id, Role.WRITE):
            # Another tenant's session does not exist, as far as this caller can tell.
            if not caller.may(session.agent_id, Role.READ):
                raise SessionNotFound(f"session {str(session_id)!r} does not exist")
            raise Forbidden("this API key may not write to this session's agent")
        ended = await run_blocking(memories.session_end, str(session_id), summary, agent_id=session.agent_id)
        return Session.from_model(ended)

    @strawberry.mutation(
        description="Erase a customer: every memory, session, node, edge, vector and keyword entry "
        "of theirs. Returns counts per store. Admin keys only."
    )
    async def forget_customer(self, info: Info[Context, None], agent_id: str, customer_id: str) -> ErasureReceipt:
        info.context.require(agent_id, Role.ADMIN)
        s = info.context.services
        receipt = await run_blocking(
            customer_data.forget_customer, s.graph, s.vectors, agent_id, customer_id, s.memories._changed
        )
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
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=chain)
