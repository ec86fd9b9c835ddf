// Recall's graph hops (app/graph.py, _LINK_HOPS) follow ABOUT and MENTIONS from the nodes a
// query names back to memories. Reading each memory's id there costs Kùzu 0.11 a random
// read into the Memory table (~10-18 µs a row); a property of the edge itself is read with
// the adjacency list (~1 µs). So each edge carries its memory's key: the same 63-bit
// number that keys the memory's vector (app/vectors.py, vector_key), which the vector
// store maps back to the id. 8 bytes an edge and direction.
//
// Existing edges get their keys in app/graph.py (GraphStore._backfill_edge_keys): the key
// of an id that is not a UUID is a hash Cypher cannot compute.
ALTER TABLE ABOUT ADD IF NOT EXISTS k INT64;
ALTER TABLE MENTIONS ADD IF NOT EXISTS k INT64;
