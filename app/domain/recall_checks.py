"""What a recall may be asked: validation of the query, ``top_k``, the filter and the
arguments of ``wake_up`` and ``associated``, before anything is read.

Owns the limits on those arguments (``MAX_QUERY_CHARS``, ``MAX_ASSOCIATED``,
``MAX_ASSOCIATION_DEPTH``) and the error codes a caller sees for breaking them; the
field rules they share with every entry point (ids, tags, importance, dates) are
app/domain/validation.py's.
"""

from __future__ import annotations

from casegraph.domain.models import RecallFilter
from casegraph.domain.validation import (
    as_utc,
    check_agent_id,
    check_customer_id,
    check_importance,
    check_memory_type,
    check_object_id,
    check_tags,
    check_text,
)
from casegraph.errors import ContentEmpty, ContentTooLarge, InvalidDate, InvalidInput, InvalidTopK

MAX_QUERY_CHARS = 2_000
# Graph-associated memories: at most this many, at most this many hops away.
MAX_ASSOCIATED = 10
MAX_ASSOCIATION_DEPTH = 3


def checked_filter(agent_id: str, query: str, top_k: int, flt: RecallFilter, max_top_k: int) -> RecallFilter:
    """``flt`` with its ids, tags and dates normalised, once the agent, the query and
    ``top_k`` (at most ``max_top_k``) are valid; raises the error a caller should see."""
    check_agent_id(agent_id)
    if not isinstance(query, str) or not query.strip():
        raise ContentEmpty("query must not be empty", code="QUERY_EMPTY")
    check_text(query, "query")
    if len(query) > MAX_QUERY_CHARS:
        raise ContentTooLarge(
            f"query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}", code="QUERY_TOO_LARGE"
        )
    if not isinstance(top_k, int) or not 1 <= top_k <= max_top_k:
        raise InvalidTopK(f"topK must be between 1 and {max_top_k}, got {top_k!r}")
    if flt.session_id is not None:
        check_object_id(flt.session_id, "filter.sessionId")
    if flt.min_importance is not None:
        check_importance(flt.min_importance, "filter.minImportance")
    for t in flt.memory_types:
        check_memory_type(t)
    if flt.since and flt.until and as_utc(flt.since, "since") > as_utc(flt.until, "until"):
        raise InvalidDate("filter.since must not be after filter.until")
    tags = tuple(check_tags(flt.tags)) if flt.tags else ()
    return RecallFilter(
        session_id=flt.session_id,
        customer_id=check_customer_id(flt.customer_id),
        tags=tags,
        since=as_utc(flt.since, "filter.since") if flt.since else None,
        until=as_utc(flt.until, "filter.until") if flt.until else None,
        min_importance=flt.min_importance,
        memory_types=tuple(flt.memory_types),
        include_superseded=bool(flt.include_superseded),
    )


def check_wake_up(agent_id: str, top_n: int, min_importance: float, max_top_k: int) -> None:
    """Raises unless ``wake_up``'s arguments are valid (``top_n`` at most ``max_top_k``)."""
    check_agent_id(agent_id)
    if not isinstance(top_n, int) or not 1 <= top_n <= max_top_k:
        raise InvalidTopK(f"top_n must be between 1 and {max_top_k}, got {top_n!r}")
    check_importance(min_importance, "min_importance")


def check_association(agent_id: str, depth: int, limit: int) -> None:
    """Raises unless ``associated``'s arguments are valid."""
    check_agent_id(agent_id)
    if not isinstance(depth, int) or not 1 <= depth <= MAX_ASSOCIATION_DEPTH:
        raise InvalidInput(
            f"association depth must be between 1 and {MAX_ASSOCIATION_DEPTH}, got {depth!r}",
            code="INVALID_DEPTH",
        )
    if not isinstance(limit, int) or not 1 <= limit <= MAX_ASSOCIATED:
        raise InvalidInput(
            f"at most {MAX_ASSOCIATED} associated memories can be asked for, got {limit!r}",
            code="INVALID_LIMIT",
        )
