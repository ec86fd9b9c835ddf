"""The domain: what CaseGraph does with support history, free of HTTP, GraphQL and engines.

Owns: the write path (validate -> extract -> embed -> hygiene -> one graph transaction ->
vectors, keywords), recall and its pure ranking, how memories link to what a query names
(strengths and reasons), the links a write derives between the nodes it names, memory
hygiene, customer identity and aliases, sessions, threads and outcomes, tickets and their
relations, wake-up context, data-subject requests, and the ``Embedder`` protocol.

May import: ``casegraph.domain``, the storage interfaces ``casegraph.storage.<kind>``
(protocols and records), ``casegraph.extractors``, ``casegraph.errors`` and
``casegraph.ops.settings``. It reaches storage through the objects ``casegraph.services``
hands it (typed by those protocols), never by importing an engine, and writes no Cypher.
"""
