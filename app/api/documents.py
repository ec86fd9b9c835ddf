"""Each distinct GraphQL document is parsed and validated once.

Bots send the same few documents (a recall, a store) with new variables; parsing and
validating one with the depth, alias and token limits costs ~1.5 ms of a ~25 ms recall.
Only successes are kept: a document that fails to parse or validate takes the full path,
and gets its error, every time. Strawberry's own ParserCache raises parse errors from
inside its hook, outside the error handling that gives them a code, so it is not used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension


class _Lru:
    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)


def known_documents(maxsize: int = 256) -> type[SchemaExtension]:
    """An extension class with its own caches (one per schema)."""
    parsed, valid = _Lru(maxsize), _Lru(maxsize)

    class KnownDocuments(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            context = self.execution_context
            query = context.query
            document = parsed.get(query) if query and context.graphql_document is None else None
            if document is not None:
                context.graphql_document = document
            yield
            if document is None and query and context.graphql_document is not None and not context.pre_execution_errors:
                parsed.put(query, context.graphql_document)

        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            key = (context.query, context.validation_rules) if context.query else None
            known = key is not None and context.pre_execution_errors is None and valid.get(key) is not None
            if known:
                context.pre_execution_errors = []  # what validating it again would find
            yield
            if key is not None and not known and context.pre_execution_errors == []:
                valid.put(key, True)

    return KnownDocuments
