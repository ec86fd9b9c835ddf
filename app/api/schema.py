"""The GraphQL schema: queries and mutations, each a thin call into the domain."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.scalars import JSON
from strawberry.types import Info

from app.api.context import Context, run_blocking
from app.api.context_types import CustomerContext
from app.api.errors import ErrorCodes
from app.api.types import (
    Customer,
    Memory,
    RecallFilter,
    RecallHit,
    Session,
    StoreMemoryInput,
)
from app.errors import CustomerNotFound
from app.memory import check_agent_id, check_customer_id


@strawberry.type
class Query:
    @strawberry.field(description="The memories most relevant to a query, best first.")
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
        "memories and open tickets."
    )
    async def customer_context(
        self, info: Info[Context, None], agent_id: str, customer_id: str, limit: int = 10
    ) -> CustomerContext:
        from app.customer_context import customer_context

        s = info.context.services
        found = await run_blocking(
            customer_context, s.graph, s.settings, s.memories.clock(), agent_id, customer_id, limit
        )
        return CustomerContext.from_model(found)

    @strawberry.field
    async def memory(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Memory:
        return Memory.from_model(await run_blocking(info.context.services.memories.get, agent_id, str(id)))

    @strawberry.field
    async def session(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> Session:
        found = await run_blocking(info.context.services.memories.session_get, str(id), agent_id=agent_id)
        return Session.from_model(found)

    @strawberry.field
    async def sessions(
        self, info: Info[Context, None], agent_id: str, active_only: bool = False, limit: int = 50, offset: int = 0
    ) -> list[Session]:
        check_agent_id(agent_id)
        found = await run_blocking(
            info.context.services.graph.list_sessions,
            agent_id,
            active_only=active_only,
            limit=min(max(limit, 1), 1000),
            offset=max(offset, 0),
        )
        return [Session.from_model(s) for s in found]

    @strawberry.field
    async def customer(self, info: Info[Context, None], agent_id: str, id: str) -> Customer:
        check_agent_id(agent_id)
        customer_id = check_customer_id(id)
        found = await run_blocking(info.context.services.graph.get_customer, agent_id, customer_id)
        if found is None:
            raise CustomerNotFound(f"customer {id!r} does not exist")
        return Customer.from_model(found)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Remember one interaction.")
    async def store(self, info: Info[Context, None], input: StoreMemoryInput) -> Memory:
        stored = await run_blocking(info.context.services.memories.store, input.to_model())
        return Memory.from_model(stored)

    @strawberry.mutation(description="Remember several interactions: all are stored or none is.")
    async def store_batch(self, info: Info[Context, None], inputs: list[StoreMemoryInput]) -> list[Memory]:
        stored = await run_blocking(
            info.context.services.memories.store_batch, [i.to_model() for i in inputs]
        )
        return [Memory.from_model(m) for m in stored]

    @strawberry.mutation
    async def forget(self, info: Info[Context, None], agent_id: str, id: strawberry.ID) -> bool:
        return await run_blocking(info.context.services.memories.forget, agent_id, str(id))

    @strawberry.mutation
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

    @strawberry.mutation
    async def session_end(
        self,
        info: Info[Context, None],
        session_id: strawberry.ID,
        summary: str | None = None,
    ) -> Session:
        # Ending consolidates: the summary (given, or extractive) becomes a memory.
        ended = await run_blocking(info.context.services.memories.session_end, str(session_id), summary)
        return Session.from_model(ended)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            ErrorCodes,
            QueryDepthLimiter(max_depth=10),
            MaxAliasesLimiter(max_alias_count=30),
            MaxTokensLimiter(max_token_count=5000),
        ],
    )
