// Memory hygiene (issue 3): reinforcement of near-duplicates, supersession of out-of-date
// state statements, and session summaries. New columns default to NULL / 0 on existing rows.

// How often a near-duplicate store reinforced this memory, and when it was last seen.
ALTER TABLE Memory ADD IF NOT EXISTS reinforce_count INT64 DEFAULT 0;
ALTER TABLE Memory ADD IF NOT EXISTS last_seen_at TIMESTAMP;
// State statements the text makes ("refund:approved"), see app/states.py.
ALTER TABLE Memory ADD IF NOT EXISTS states STRING[];
// Set when a newer memory about the same order/ticket changed the state this one states.
ALTER TABLE Memory ADD IF NOT EXISTS superseded_by STRING;
// "summary" for a session's consolidation memory; NULL for ordinary memories.
ALTER TABLE Memory ADD IF NOT EXISTS kind STRING;

// newer -[SUPERSEDES]-> older: the history of a state (older ones stay, ranked below).
CREATE REL TABLE IF NOT EXISTS SUPERSEDES(FROM Memory TO Memory, at TIMESTAMP);
// summary memory -[SUMMARISES]-> the session it consolidates.
CREATE REL TABLE IF NOT EXISTS SUMMARISES(FROM Memory TO Session);
