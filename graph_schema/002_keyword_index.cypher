// BM25 keyword search over memory text (Kùzu's bundled fts extension; the index
// follows inserts and deletes, so no separate keyword store needs reconciling).
CALL CREATE_FTS_INDEX('Memory', 'memory_fts', ['content'], stemmer := 'english');
