"""Storage: where memories, sessions, customers, tickets and their search indexes live.

Owns: every query language and engine. ``storage/embedded/`` is the engine that runs in the
server's own process: Kùzu (the graph; the only ``import kuzu``), USearch (vectors; the only
``import usearch``) and tantivy (keywords; the only ``import tantivy``), with their
migrations, row mapping and connection policy.

May import: ``casegraph.domain.models`` and ``casegraph.domain.ticket_models`` (the records it
stores), ``casegraph.errors``, ``casegraph.extractors`` and ``casegraph.graph_schema``.
Never the API.
"""
