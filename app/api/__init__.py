"""The API layer: GraphQL (schema, types, DataLoaders), REST (the Dakera wire), the
playground and the ASGI middleware.

Owns: request parsing, authentication and the scope gate, error shaping, the Starlette app
(``api/app.py``: ``create_app``). It is thin: every resolver and route calls a domain service.

May import: ``casegraph.domain`` (services and models), ``casegraph.ops`` (settings, logs,
metrics, keys), ``casegraph.errors``, strawberry and starlette. Never an engine (kuzu,
usearch, tantivy, torch) and never ``casegraph.storage``.
"""
