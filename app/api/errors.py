"""GraphQL error shaping: every error carries ``extensions.code``.

- CaseGraph's expected errors (bad input, not found, conflicts) keep their message and
  get their ``code``;
- errors graphql-core raises before execution (syntax, validation, a variable of the
  wrong type) get ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` / ``BAD_USER_INPUT``;
- anything else is logged with the request id and masked: the client sees
  "Internal server error" and the request id, never a stack trace or Cypher.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from casegraph.errors import CaseGraphError, ConfigurationError, StorageError
from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension

log = logging.getLogger("casegraph.api")

_UNEXPECTED = (StorageError, ConfigurationError)


def shape_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    extensions = dict(error.extensions or {})
    if request_id:
        extensions["requestId"] = request_id
    message = error.message
    # A transient storage refusal (a full buffer pool, an unreachable store server) names no
    # internals: the client is told.
    if isinstance(original, CaseGraphError) and (
        not isinstance(original, _UNEXPECTED) or getattr(original, "transient", False)
    ):
        extensions["code"] = original.code
        message = original.message
    elif original is None or isinstance(original, GraphQLError | StrawberryInputCoercionError):
        extensions.setdefault("code", _pre_execution_code(message))
    else:
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(map(str, error.path or [])) or "operation",
            request_id,
            exc_info=original,
        )
        extensions["code"] = "INTERNAL_ERROR"
        message = "Internal server error"
        original = None
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def _pre_execution_code(message: str) -> str:
    if "Syntax Error" in message:
        return "GRAPHQL_PARSE_FAILED"
    # A variable or literal of the wrong type, e.g. a malformed DateTime.
    if message.startswith("Variable ") or "cannot represent" in message or "Expected value of type" in message:
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


class ErrorCodes(SchemaExtension):
    """Gives every error a code and masks the unexpected ones (see module docstring)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            context = self.execution_context.context
            request_id = getattr(context, "request_id", None)
            result.errors = [shape_error(e, request_id) for e in errors]
