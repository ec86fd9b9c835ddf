// Customer identity (issue 21, part 3).
//
// Alias: something a customer is known by, learned from its memories as they arrive or
// from its id: a name ("my name is Jane Doe", a PERSON in the customer's own messages, the
// words of its id or of its account handle), an e-mail, a phone, an account handle. One
// node per agent and (kind, key): uid "<agent_id>|<kind>:<key>", so a query naming the
// alias finds it with one primary-key lookup, and a name two customers share is one node
// with two KNOWN_AS edges (the ambiguity is visible, not guessed).
// KNOWN_AS: the customer -> alias link, with where it was learned (a memory id, or "id")
// and when. Node and edge are written whole at insert and never updated (Kùzu 0.11's
// string-column faults, tests/test_string_columns.py).
//
// A session that learns its customer after some of its memories were stored gets a
// HAD_SESSION edge then, and those memories ABOUT edges (app/graph.py, _learn_sessions):
// Session.customer_id and Memory.customer_id keep what was known at insert.
CREATE NODE TABLE IF NOT EXISTS Alias(
    uid STRING, agent_id STRING, kind STRING, key STRING, value STRING, created_at TIMESTAMP,
    PRIMARY KEY (uid)
);
CREATE REL TABLE IF NOT EXISTS KNOWN_AS(FROM Customer TO Alias, source STRING, at TIMESTAMP);
// Aliases of the customers stored before this version are learned by the data step
// (GraphStore._learn_existing_aliases).
RETURN 1
