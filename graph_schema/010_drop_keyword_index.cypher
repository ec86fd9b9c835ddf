// Keyword search moved to per-agent tantivy indexes beside the graph (app/keywords.py,
// filled from the memories at start-up): Kùzu's full-text index is no longer read, and
// keeping it up to date cost every write (and a full-text query during a commit crashed
// Kùzu 0.11.3).
CALL DROP_FTS_INDEX('Memory', 'memory_fts');
// At once: Kùzu 0.11.3 cannot replay a log that holds an index's creation (002, on a new
// database) and its drop ("Cannot find table catalog entry"), so a crash before the next
// checkpoint would leave a database that does not open.
CHECKPOINT;
