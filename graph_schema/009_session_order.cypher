// The order of a session's memories (issue 21, threads and outcomes): each IN_SESSION
// edge carries its memory's position in the session, 1, 2, 3... in the order the stores
// committed (a batch in its own order). Memories in one batch share their createdAt, so
// time alone cannot order them. Recall walks a session from a memory that names an order
// or ticket to the agent's last messages (app/threads.py).
//
// On the edge, written once with it: an INT64 that is never updated (see NO_TEXT in
// app/graph.py), read with the adjacency list rather than by a random read into Memory.
// Existing sessions are numbered by createdAt, then id (GraphStore._number_sessions).
ALTER TABLE IN_SESSION ADD IF NOT EXISTS seq INT64
