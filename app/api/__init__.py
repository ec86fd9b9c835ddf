"""The API layer: GraphQL (schema, types, DataLoaders), REST (the Dakera wire), the
playground and the ASGI middleware.

Owns: request parsing, authentication and the scope gate (``api/scope.py``), error shaping,
the Starlette app (``api/app.py``: ``create_app``). It is thin: every resolver and route
calls a domain service that ``casegraph.services`` wires, in a worker thread
(``api/blocking.py``); nested GraphQL fields go through per-request DataLoaders
(``api/loaders.py``), so a list costs one call per field, not one per object.

May import: ``casegraph.domain`` (services and records), ``casegraph.services``,
``casegraph.ops`` (settings, logs, metrics, keys, backup), ``casegraph.errors``, strawberry
and starlette. Never an engine (kuzu, usearch, tantivy, torch) and never ``casegraph.storage``.
"""
