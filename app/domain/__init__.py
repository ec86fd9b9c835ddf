"""The domain: what CaseGraph does with support history, free of HTTP, GraphQL and engines.

Owns: the write path (validate -> extract -> embed -> hygiene -> one graph transaction ->
vectors, keywords), recall and its pure ranking, memory hygiene, customer identity and
aliases, sessions, threads and outcomes, tickets and their relations, data-subject requests.

May import: ``casegraph.domain``, ``casegraph.extractors``, ``casegraph.errors`` and
``casegraph.ops.settings``. It reaches storage through the objects ``casegraph.services``
hands it, never by importing an engine, and writes no Cypher.
"""
