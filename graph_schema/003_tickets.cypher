// Tickets as first-class nodes (issue 4).
//
// - Ticket.embedding: the mean of its memories' embeddings (unit length), compared to find
//   semantically similar tickets; Ticket.similar_floor: the similarity of its K-th most
//   similar ticket at its last refresh (a pair is kept if either side counts the other
//   among its K nearest).
// - Ticket.refresh_token: set (to a new token) in the same transaction that links a memory
//   to the ticket or deletes one of its memories; app/tickets.py recomputes the ticket's
//   RELATED edges and clears the token only if it is unchanged, so a crash or a concurrent
//   store never leaves a ticket's relations silently stale.
// - RELATED: one edge per related pair (stored from the smaller uid to the larger, read
//   undirected) with the combined weight and its reasons (text, kind and weight of each).
// - TicketEvent: status changes, for timelines.
ALTER TABLE Ticket ADD embedding FLOAT[];
ALTER TABLE Ticket ADD similar_floor DOUBLE;
ALTER TABLE Ticket ADD refresh_token STRING;
CREATE NODE TABLE IF NOT EXISTS TicketEvent(
    id STRING, agent_id STRING, kind STRING, status STRING, previous STRING, note STRING,
    at TIMESTAMP,
    PRIMARY KEY (id)
);
CREATE REL TABLE IF NOT EXISTS HAS_EVENT(FROM Ticket TO TicketEvent);
CREATE REL TABLE IF NOT EXISTS RELATED(
    FROM Ticket TO Ticket,
    weight DOUBLE, reasons STRING[], kinds STRING[], parts DOUBLE[], updated_at TIMESTAMP
);
// Tickets stored before this migration get their relations computed at the next start.
MATCH (t:Ticket) SET t.refresh_token = 'migration-003';
