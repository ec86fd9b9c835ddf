"""Storage: where memories, sessions, customers, tickets and their search indexes live.

The interfaces the domain calls, one module per kind of record: ``memories``,
``sessions``, ``customers``, ``tickets`` and ``search`` (vectors, keywords, graph links), and
``hygiene`` (what memory hygiene and customer context read and write).
Each holds the record types of its kind and ``typing.Protocol``s listing the operations;
the domain imports these and never an engine.

Owns: every query language and engine. ``storage/embedded/`` is the engine that runs in the
server's own process: Kùzu (the graph; ``import kuzu`` only in embedded/connection.py),
USearch (vectors; the only ``import usearch``) and tantivy (keywords; the only ``import
tantivy``), with their migrations, row mapping and connection policy; it implements every
interface (its folder's docstring lists the modules).

May import: ``casegraph.domain.models`` and ``casegraph.domain.ticket_models`` (the records it
stores), ``casegraph.errors``, ``casegraph.extractors`` and ``casegraph.graph_schema``; the
interface modules import only the record modules. Never the API.
"""
