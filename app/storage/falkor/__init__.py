"""The FalkorDB server backend: graph, vectors and keywords in a FalkorDB server (Redis
protocol), shared by any number of CaseGraph processes.

It implements every interface of ``casegraph.storage`` beside ``storage/embedded/``; the
domain does not know which one it talks to. ``FalkorStore`` (store.py) is composed of a
part per kind of record over one connection:

    connection.py    the address, key layout, per-agent write lock and the Transaction
                     (one query per write); the only ``import falkordb`` / ``redis``
    schema.py        the indexes of an agent's graph (range, vector, full-text)
    memories.py      memory reads, filters, ranking attributes
    memory_writes.py the write path: memories, nodes, links, session positions
    sessions.py      sessions          customers.py  customers        aliases.py  alias learning
    links.py         recall's graph reads (GraphSearch)
    tickets.py       tickets, RELATED edges, exploration (TicketStore)
    hygiene.py, erasure.py   hygiene and customer context; erasure and export
    vectors.py       VectorIndex over the graph's vector index
    keywords.py      KeywordSearch over the graph's full-text index
    backend.py       opening it all for the services
    snapshots.py     backups: each agent's graph as the server's DUMP, restored under its key
    reembed.py       ``casegraph reembed``'s steps: progress, new vectors, new vector indexes

The row layout (labels, properties, keys) is the embedded schema's (../rows.py); times are
microseconds since the epoch.
"""
