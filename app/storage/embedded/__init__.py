"""The embedded engine: Kùzu + USearch + tantivy in one data directory, in this process.

It implements every interface of ``casegraph.storage``. The graph (Kùzu) is one
``GraphStore`` (graph.py) composed of a part per kind of record, over one connection:

    connection.py    opening, readers, prepared statements, pool and checkpoint policy,
                     the Transaction (the only ``import kuzu``)
    batching.py      point statements, UNWIND or a staged join: the row-modes planner
    migrations.py    the recorded migrations and their data steps
    (../rows.py      node keys, column lists, rows to records: shared with falkor/)
    memories.py      memory reads, filters, deletes, the attribute cache (attrs_cache.py)
    memory_writes.py the write path's statements, session positions
    sessions.py      sessions          customers.py  customers        aliases.py  alias learning
    links.py         recall's graph reads (GraphSearch)
    tickets.py       tickets, RELATED edges, exploration (TicketStore)
    hygiene.py, erasure.py, reembed.py   the statements of hygiene, erasure, re-embedding

Beside it: vectors.py (USearch, the only ``import usearch``), keywords.py (tantivy, the
only ``import tantivy``), datadir.py (the data directory's lock and vector space),
integrity.py. Kùzu 0.11.3's faults and how this engine steps around them:
``docs/kuzu-quirks.md``.
"""
