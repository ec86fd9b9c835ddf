// Scratch tables for writing many edges at once. Kùzu 0.11 plans an UNWIND that matches
// two nodes by key as a scan per row, and a prepared point statement looks both nodes up
// (~0.36 ms an edge at 100k memories; a 500-memory batch writes ~5,000 memory edges and
// its ticket refresh ~3,700 RELATED edges). Past a few dozen edges their rows are staged
// here and joined with the node tables in one statement, then deleted, all inside the
// writing transaction: both tables are empty outside it.
//
// EdgeStage: from key f, to key t, and the memory key k that ABOUT/MENTIONS carry
// (app/graph.py, _write_edges). RelatedStage: a RELATED edge's pair and properties
// (app/graph_tickets.py, _create_related).
CREATE NODE TABLE IF NOT EXISTS EdgeStage(n SERIAL, f STRING, t STRING, k INT64, PRIMARY KEY (n));
CREATE NODE TABLE IF NOT EXISTS RelatedStage(
    n SERIAL, a STRING, b STRING, w DOUBLE, reasons STRING[], kinds STRING[], parts DOUBLE[],
    PRIMARY KEY (n)
);
