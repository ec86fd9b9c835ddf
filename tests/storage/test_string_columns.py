"""Kùzu 0.11's string columns, as CaseGraph writes them.

Two things that version does at a checkpoint, each reproduced with Kùzu alone:
- once any value of a string column's node group was updated, every value of it is
  appended to the column's dictionary again (it grows by the column's size each time);
- after that, a row inserted with NULL in the column corrupts it: a value reads back as
  every string of the column joined together.
So CaseGraph writes no string again that it can write once, and inserts "" (``NO_TEXT``),
never NULL, into a string column it updates later. Every test checkpoints the way the
service does (``GraphStore.frozen``) between the steps that trigger the two.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from casegraph.domain.models import StoreRequest


def checkpoint(services):
    with services.graph.frozen():
        pass


def store(services, ticket, customer, text, **extra):
    return services.memories.store(
        StoreRequest(agent_id="bot", content=text, ticket_id=ticket, tags=(f"customer:{customer}",), **extra)
    )


def string_entries(graph, column):
    """How many strings the Ticket table keeps on disk for ``column`` (its dictionary).
    Storage keeps a column's name from before a rename (007_ticket_text)."""
    rows = graph.read("CALL storage_info('Ticket') RETURN column_name, num_values")
    return sum(n for name, n in rows if name in (f"{column}_offset", f"{column}_compacted_offset"))


@pytest.mark.embedded_only  # Kùzu's string columns at a checkpoint
def test_refreshes_and_checkpoints_do_not_pile_up_ticket_subjects(services):
    # A refresh used to SET the subjects of the tickets it touched: over a 100k load,
    # 8k subjects became 530k entries (50 MB), and a checkpoint then corrupted them.
    for round_ in range(6):
        for i in range(4):
            store(services, f"T-{round_}{i}", f"c{i}", f"Parcel {round_}{i} arrived damaged. Please refund.")
        # Touch every older ticket again: each one is refreshed in this round.
        for ticket in [f"T-{r}{i}" for r in range(round_) for i in range(4)]:
            store(services, ticket, "ann", f"Follow-up on {ticket}: still waiting for the refund.")
        checkpoint(services)
    services.tickets.catch_up()  # the last round's refresh runs on its own thread
    tickets = services.graph.read("MATCH (t:Ticket) RETURN t.id, t.subject ORDER BY t.id")
    assert len(tickets) == 24
    assert all(subject == f"Parcel {t[2:]} arrived damaged." for t, subject in tickets)
    assert services.tickets.tickets.stale_tickets(10) == []
    # About one entry a ticket, not one a ticket and checkpoint (84 before).
    assert 24 <= string_entries(services.graph, "subject") <= 2 * 24


def test_a_ticket_takes_its_subject_and_channel_from_its_first_memory(services):
    store(services, "T-9", "ann", "Second thoughts. On chat.", metadata={"channel": "chat"},
          created_at=datetime(2025, 1, 2, tzinfo=UTC))
    store(services, "T-9", "ann", "It broke! Called in.", metadata={"channel": "phone"},
          created_at=datetime(2025, 1, 1, tzinfo=UTC))
    store(services, "T-8", "ann", "No channel here.")
    # Written when the ticket was created; a later memory does not rewrite them.
    t9, t8 = services.tickets.get("bot", "T-9"), services.tickets.get("bot", "T-8")
    assert (t9.subject, t9.channel, t9.status) == ("Second thoughts.", "chat", "open")
    assert (t8.subject, t8.channel) == ("No channel here.", None)


@pytest.mark.embedded_only  # Kùzu's string columns at a checkpoint
def test_session_summaries_survive_a_new_session_after_the_last_one_ended(services):
    memories = services.memories
    started = [memories.session_start("bot", customer_id="ann") for _ in range(30)]
    checkpoint(services)
    for i, s in enumerate(started[:-1]):
        memories.session_end(s.id, summary=f"Ann asked about order {4500 + i}; refund issued.")
    checkpoint(services)
    memories.session_end(started[-1].id, summary="The last one ended.")  # every row now updated
    checkpoint(services)
    fresh = memories.session_start("bot", customer_id="ben")  # inserted without a summary
    checkpoint(services)
    memories.session_start("bot", customer_id="cy")
    checkpoint(services)
    want = [f"Ann asked about order {4500 + i}; refund issued." for i in range(29)] + ["The last one ended."]
    assert [memories.session_get(s.id).summary for s in started] == want
    assert memories.session_get(fresh.id).summary is None
    longest = services.graph.read("MATCH (s:Session) RETURN max(size(s.summary))")[0][0]
    assert longest == max(len(w) for w in want)  # 1,100+ characters when corrupted


@pytest.mark.embedded_only  # Kùzu's string columns at a checkpoint
def test_ticket_channels_survive_an_update_then_a_ticket_without_one(services):
    # Distinct channels: Kùzu stores equal strings of a column once, and the corruption
    # needs the dictionary's indices to span more than a few values.
    for i in range(40):
        store(services, f"T-{i}", "ann", f"Ticket {i} opened.", metadata={"channel": f"email-{i}"})
    checkpoint(services)
    services.tickets.update("bot", "T-3", channel="phone")  # every channel re-appended
    checkpoint(services)
    store(services, "T-99", "ben", "A ticket from a memory without a channel.")
    checkpoint(services)
    store(services, "T-98", "ben", "And another one.")
    checkpoint(services)
    channels = {t: services.tickets.get("bot", t).channel for t in [f"T-{i}" for i in range(40)] + ["T-99", "T-98"]}
    assert channels == {**{f"T-{i}": f"email-{i}" for i in range(40)}, "T-3": "phone", "T-99": None, "T-98": None}


@pytest.mark.embedded_only  # Kùzu's string columns at a checkpoint
def test_migration_007_compacts_ticket_texts_and_gives_corrupted_subjects_back(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    for i in range(40):
        store(services, f"T-{i}", "ann", f"Ticket {i} opened. Details follow.", metadata={"channel": f"web-{i}"})
    graph = services.graph
    # What a data directory written before 007 could hold: subjects SET again by refreshes
    # (each checkpoint re-appended the column), then a ticket inserted without a subject.
    checkpoint(services)
    with graph.transaction() as run:
        run("MATCH (t:Ticket {id: 'T-1'}) SET t.subject = t.subject")
    checkpoint(services)
    with graph.transaction() as run:
        run("CREATE (:Ticket {uid: 'bot|T-77', agent_id: 'bot', id: 'T-77', status: 'open', channel: ''})")
        run("MATCH (x:Migration {name: '007_ticket_text'}) DELETE x")
    checkpoint(services)
    assert string_entries(graph, "subject") >= 2 * 40
    assert graph.read("MATCH (t:Ticket) RETURN max(size(t.subject))")[0][0] > 200  # corrupted
    services.close()

    reopened = open_services(tmp_path / "data")
    assert reopened.graph.applied_migrations == ["007_ticket_text"]
    # The corrupted subjects are computed again (some had been swapped between tickets,
    # within the length a subject may have); the intact channels are copied.
    tickets = {t.id: t for t in (reopened.tickets.get("bot", f"T-{i}") for i in range(40))}
    assert {t: (x.subject, x.channel) for t, x in tickets.items()} == {
        f"T-{i}": (f"Ticket {i} opened.", f"web-{i}") for i in range(40)
    }
    assert reopened.tickets.get("bot", "T-77").subject is None  # no memory to take one from
    assert reopened.tickets.tickets.stale_tickets(10) == []
    assert string_entries(reopened.graph, "subject") <= 2 * 41


@pytest.mark.embedded_only  # Kùzu's string columns at a checkpoint
def test_migration_007_copies_intact_ticket_texts_as_they_are(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    for i in range(30):
        store(services, f"T-{i}", "ann", f"Ticket {i} opened. Details follow.")
    services.tickets.update("bot", "T-4", subject="Refund for a crushed box", channel="phone")
    graph = services.graph
    checkpoint(services)
    for _ in range(3):  # bloated as before 007, not corrupted
        with graph.transaction() as run:
            run("MATCH (t:Ticket {id: 'T-1'}) SET t.subject = t.subject")
        checkpoint(services)
    with graph.transaction() as run:
        run("MATCH (x:Migration {name: '007_ticket_text'}) DELETE x")
    assert string_entries(graph, "subject") >= 3 * 30
    services.close()

    reopened = open_services(tmp_path / "data")
    assert reopened.graph.applied_migrations == ["007_ticket_text"]
    got = {t: reopened.tickets.get("bot", t) for t in [f"T-{i}" for i in range(30)]}
    want = {f"T-{i}": (f"Ticket {i} opened.", None) for i in range(30)}
    want["T-4"] = ("Refund for a crushed box", "phone")  # an analyst's subject is kept
    assert {t: (x.subject, x.channel) for t, x in got.items()} == want
    assert string_entries(reopened.graph, "subject") <= 31
