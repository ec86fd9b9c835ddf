// Identifiers by shape (issue 21, extractors/identifiers.py): any token shaped like an id
// (W1588712, M20IZO, RMA-12345, firstname_lastname_6699...) is an Entity of kind
// 'identifier' keyed by the token case-folded, whatever words surround it, linked by
// MENTIONS from the memories that name it. No new tables or columns.
//
// Memories stored before it are linked to the identifiers their text names in app/graph.py
// (GraphStore._link_existing_identifiers), by the same rules a store runs. Their
// Memory.entities column is left as written: a string column is never updated (NO_TEXT).
