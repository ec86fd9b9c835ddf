// A scratch table for writing many RELATED edges at once (app/graph_tickets.py,
// save_refresh). Kùzu 0.11 plans an UNWIND that matches two tickets by key per row as a
// scan, and a prepared point statement costs ~0.36 ms an edge at 100k memories (a
// 500-memory batch recreates ~3,700 edges). Rows are staged here and joined with the
// Ticket table in one statement, then deleted, all in the refresh's transaction: the
// table is empty outside it.
CREATE NODE TABLE IF NOT EXISTS RelatedStage(
    n SERIAL, a STRING, b STRING, w DOUBLE, reasons STRING[], kinds STRING[], parts DOUBLE[],
    PRIMARY KEY (n)
);
