// A scratch table for writing many edges at once. Kùzu 0.11 plans an UNWIND that matches
// two nodes by key as a scan per row, and a prepared point statement looks both nodes up
// (~0.2-1 ms an edge at 100k memories; a 500-memory batch writes ~5,000 memory edges and
// its ticket refresh ~3,700 RELATED edges). Past a few dozen edges, their rows are staged
// here and joined with the node tables in one statement, then deleted, all inside the
// writing transaction: the table is empty outside it (app/graph.py, Transaction.edges).
//
// f and t: the keys of the two nodes; the rest: the edge's properties, where it has them
// (k on ABOUT/MENTIONS, the others on RELATED).
CREATE NODE TABLE IF NOT EXISTS EdgeStage(
    n SERIAL, f STRING, t STRING, k INT64, w DOUBLE, reasons STRING[], kinds STRING[], parts DOUBLE[],
    PRIMARY KEY (n)
);
