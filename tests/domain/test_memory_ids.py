"""Memory ids are global on both engines: an id one agent stores is refused to every other
(``MEMORY_EXISTS``) until the memory is gone, and erasing its customer frees it (on
FalkorDB that is the directory of ids, app/storage/falkor/memory_ids.py)."""

from __future__ import annotations

import uuid

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.errors import MemoryExists

A = "support-bot"
B = "other-bot"


def test_an_id_is_one_agents_until_its_customer_is_erased(services):
    mid = str(uuid.uuid4())
    services.memories.store(StoreRequest(agent_id=A, content="Jane's order 4521 arrived late", customer_id="jane-doe",
                                         id=mid))
    other = StoreRequest(agent_id=B, content="Another agent's note under the same id", id=mid)
    with pytest.raises(MemoryExists) as refused:
        services.memories.store(other)
    assert refused.value.code == "MEMORY_EXISTS"
    assert services.customer_data.forget_customer(A, "jane-doe").memories == 1
    assert services.memories.store(other).id == mid
    with pytest.raises(MemoryExists):
        services.memories.store(StoreRequest(agent_id=A, content="and back again", id=mid))


def test_a_deleted_memorys_id_may_be_used_by_another_agent(services):
    mid = str(uuid.uuid4())
    services.memories.store(StoreRequest(agent_id=A, content="Bob prefers e-mail", id=mid))
    assert services.memories.forget_many(A, [mid]) == [mid]
    assert services.memories.store(StoreRequest(agent_id=B, content="Carol prefers phone calls", id=mid)).id == mid
