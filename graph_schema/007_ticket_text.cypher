// Ticket.subject and Ticket.channel are copied into new columns by the data step
// (GraphStore._compact_ticket_text), which drops the old ones. Before this version each
// ticket refresh wrote them again, and Kùzu 0.11 appended the whole column to its
// dictionary at each checkpoint after such a write (50 MB for 8k subjects at 100k
// memories); a column that grew so could then be corrupted by a later insert.
RETURN 1
