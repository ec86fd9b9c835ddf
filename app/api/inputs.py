"""The GraphQL input types, and their mapping to the domain's requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from casegraph.domain import models
from casegraph.domain.validation import MAX_OFFSET, MAX_PAGE
from strawberry.scalars import JSON


@strawberry.input
class StoreMemoryInput:
    agent_id: str
    content: str
    importance: float = 0.5
    tags: list[str] | None = None
    session_id: strawberry.ID | None = None
    customer_id: str | None = None
    memory_type: str = strawberry.field(
        default="episodic", description="episodic (default), semantic, procedural or working"
    )
    metadata: JSON | None = None
    created_at: datetime | None = strawberry.field(
        default=None, description="When it happened (for importing history); defaults to now."
    )
    ttl_seconds: int | None = strawberry.field(default=None, description="Forget it after this long.")
    ticket_id: str | None = strawberry.field(
        default=None, description="Link it to this ticket (like a ticket:<id> tag), e.g. T-1042."
    )

    def to_model(self) -> models.StoreRequest:
        return models.StoreRequest(
            agent_id=self.agent_id,
            content=self.content,
            importance=self.importance,
            tags=tuple(self.tags or ()),
            session_id=str(self.session_id) if self.session_id is not None else None,
            customer_id=self.customer_id,
            memory_type=self.memory_type,
            metadata=self.metadata,
            created_at=self.created_at,
            ttl_seconds=self.ttl_seconds,
            ticket_id=self.ticket_id,
        )


@strawberry.input
class RecallFilter:
    session_id: strawberry.ID | None = None
    customer_id: str | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Any of these tags.")
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    memory_types: list[str] | None = None
    include_superseded: bool = strawberry.field(
        default=False, description="Also return superseded (out-of-date) memories, ranked below current ones."
    )

    def to_model(self) -> models.RecallFilter:
        return models.RecallFilter(
            session_id=str(self.session_id) if self.session_id is not None else None,
            customer_id=self.customer_id,
            tags=tuple(self.tags or ()),
            since=self.since,
            until=self.until,
            min_importance=self.min_importance,
            memory_types=tuple(self.memory_types or ()),
            include_superseded=self.include_superseded,
        )


# The page arguments of every paged list, described once (the bounds: check_page and
# check_limit in app/domain/validation.py).
PageLimit = Annotated[
    int, strawberry.argument(description=f"How many to return: 1 to {MAX_PAGE}, else INVALID_LIMIT.")
]
PageOffset = Annotated[
    int, strawberry.argument(description=f"How many to skip first: 0 to {MAX_OFFSET}, else INVALID_OFFSET.")
]
