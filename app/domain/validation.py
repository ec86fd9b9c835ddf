"""Input validation shared by every entry point: ids, texts, tags, importance, dates, pages.

Each ``check_*`` returns the value as stored (normalised where ids have a canonical form)
or raises the ``InvalidInput`` subclass the API reports (with its ``code``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from casegraph.domain.models import AGENT_ID, MEMORY_TYPES
from casegraph.errors import (
    InvalidDate,
    InvalidId,
    InvalidImportance,
    InvalidInput,
    InvalidTag,
)
from casegraph.extractors import (
    InvalidTagError,
    normalise_customer_id,
    normalise_ticket_key,
    validate_tags,
)

UUID_LIKE = re.compile(r"^[0-9a-fA-F-]{1,64}$")
MAX_METADATA_BYTES = 16_384
MAX_TTL_SECONDS = 10 * 365 * 86_400
# Every list that takes a ``limit`` (and an ``offset``) pages by these bounds: a limit of 1
# to MAX_PAGE items, an offset of 0 to MAX_OFFSET. A deeper offset is a scan, not a page:
# the engines read ``offset + limit`` rows and drop the first ``offset`` (no SKIP, see
# docs/kuzu-quirks.md #3).
MAX_PAGE = 1_000
MAX_OFFSET = 10_000


def check_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not AGENT_ID.match(agent_id):
        raise InvalidId(
            f"agentId {short(agent_id)!r} is invalid: use 1-128 letters, digits or _ . : @ - "
            "starting with a letter or digit",
            code="INVALID_AGENT_ID",
        )
    return agent_id


def check_object_id(value: str, what: str) -> str:
    """Ids we issue are UUIDs; anything else cannot exist, so say it is malformed."""
    if not isinstance(value, str) or not UUID_LIKE.match(value):
        raise InvalidId(f"{what} {short(value)!r} is not a valid id")
    return value


def check_customer_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise_customer_id(value)
    except ValueError as exc:
        raise InvalidId(f"customerId {short(value)!r} is invalid: {exc}", code="INVALID_CUSTOMER_ID") from exc


def check_ticket_id(value: str | None) -> str | None:
    """``T-1042``, ``1042``, ``ticket #1042`` ... -> ``T-1042``."""
    if value is None:
        return None
    try:
        return normalise_ticket_key(value)
    except (ValueError, TypeError) as exc:
        raise InvalidId(f"ticket id {short(value)!r} is invalid: {exc}", code="INVALID_TICKET_ID") from exc


def check_importance(value: float, what: str = "importance") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise InvalidImportance(f"{what} must be a number between 0 and 1, got {value!r}")
    return float(value)


def check_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        raise InvalidTag("tags must be a list of strings, not one string")
    try:
        return validate_tags(list(tags))
    except InvalidTagError as exc:
        raise InvalidTag(str(exc)) from exc


def check_memory_type(value: str) -> str:
    if value not in MEMORY_TYPES:
        raise InvalidInput(
            f"memoryType {short(value)!r} is not one of {', '.join(MEMORY_TYPES)}",
            code="INVALID_MEMORY_TYPE",
        )
    return value


def check_text(value: str, what: str) -> str:
    """Text must be storable: no NUL characters, no lone surrogates (not valid UTF-8)."""
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters", code="INVALID_TEXT")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text: {exc.reason}", code="INVALID_TEXT") from exc
    return value


def as_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidDate(f"{what} must be a date-time, got {short(value)!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_limit(value: int, most: int = MAX_PAGE) -> int:
    """A count of things asked for: 1 to ``most`` (``MAX_PAGE`` unless the list is smaller
    by nature), else ``INVALID_LIMIT``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidInput(f"limit must be between 1 and {most}, got {value!r}", code="INVALID_LIMIT")
    return value


def check_page(limit: int | None, offset: int) -> tuple[int | None, int]:
    """One page, returned as given: ``limit`` 1 to ``MAX_PAGE`` (None: the rest) else
    ``INVALID_LIMIT``; ``offset`` 0 to ``MAX_OFFSET`` else ``INVALID_OFFSET``."""
    if limit is not None:
        check_limit(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(
            f"offset must be between 0 and {MAX_OFFSET}, got {offset!r}", code="INVALID_OFFSET"
        )
    return limit, offset


def link_keys(values: Sequence[str], normalise: Callable[[str], str], what: str) -> tuple[str, ...]:
    keys = []
    for value in values:
        try:
            keys.append(normalise(value))
        except (ValueError, TypeError) as exc:
            raise InvalidId(
                f"{what} {short(value)!r} is invalid: {exc}", code=f"INVALID_{what.upper()}_ID"
            ) from exc
    return tuple(keys)


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", code="INVALID_METADATA")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", code="INVALID_METADATA") from exc
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is {len(encoded.encode())} bytes; the limit is {MAX_METADATA_BYTES}",
            code="INVALID_METADATA",
        )
    return json.loads(encoded)
