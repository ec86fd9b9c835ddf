// Aliases said in a conversation whose customer the bot never gave (issue 21, part 3): a
// session -> alias edge, with the memory it was said in and when, written once at insert.
// A query naming the alias finds those conversations (app/graph.py, alias_sessions), and
// the conversations that share an e-mail, phone or handle with them. A session that later
// learns its customer keeps its edges; its memories' aliases go to the customer then.
CREATE REL TABLE IF NOT EXISTS SAID(FROM Session TO Alias, source STRING, at TIMESTAMP);
RETURN 1
