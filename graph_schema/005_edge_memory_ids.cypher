// The memory's id on its edges to customers, orders, tickets and entities (``mid``).
//
// Recall's graph hops walk from the node a query names to the memories linked to it. Kùzu
// reads the id of each such memory from that memory's row, a random access per memory
// (7 ms for the 429 memories that mention a name at 100k memories); the same id read from
// the edge comes with the node's adjacency list (0.6 ms). The ranking attributes the hops
// also read per memory come from the attribute cache (app/attrs_cache.py).
ALTER TABLE ABOUT ADD IF NOT EXISTS mid STRING;
ALTER TABLE MENTIONS ADD IF NOT EXISTS mid STRING;
MATCH (m:Memory)-[e:ABOUT]->() SET e.mid = m.id;
MATCH (m:Memory)-[e:MENTIONS]->() SET e.mid = m.id;
