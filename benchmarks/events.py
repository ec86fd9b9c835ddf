"""Case events: what a support bot writes down as a case moves along, with ground truth.

Each event has memory wordings, the state it asserts (ground truth for supersession:
within one case, an earlier statement of a topic is out of date once a later one states
that topic differently), an importance, and - for the events a bot is later asked about
in other words - paraphrased question wordings. Some state wordings are deliberately
indirect ("the money is on its way back") so that state detection is measured honestly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    texts: tuple[str, ...]
    state: tuple[str, str] | None = None  # (topic, state) the text asserts
    importance: float = 0.5
    promise: bool = False
    questions: tuple[str, ...] = ()  # paraphrased questions this event answers


EVENTS: dict[str, Event] = {
    # -- order level ------------------------------------------------------------------
    "where_is": Event(
        ("{Subj} asked where order #{o} is; tracking {trk} shows the {box} is out for delivery.",
         "Chased order {o} for {obj}: the {box} is in transit with tracking {trk}."),
        ("delivery", "in_transit"), 0.4,
    ),
    # -- damaged on arrival -----------------------------------------------------------
    "damage_report": Event(
        ("{Subj} says the {product}{of_order} arrived {damage}.{on_ticket}",
         "{Product} delivered {damage}; the {box} was soaked and torn.{on_ticket}",
         "Reported a {damage} {product}{of_order}. {Subj_short} described the state of the {box}.{on_ticket}",
         "The {product} came {damage} - the outer {box} looked fine, the item inside did not.{on_ticket}"),
        None, 0.7, False,
        ("did the {product} arrive {q_broken}?", "what was wrong with the {product} {subj_short} received?",
         "was the {product} {q_broken} when it came?"),
    ),
    "photos_requested": Event(
        ("Asked {obj} for photos of the {product} and the {box}.",
         "Requested pictures of the damage before we can go further."),
        None, 0.4,
    ),
    # -- late or lost -----------------------------------------------------------------
    "delay_report": Event(
        ("{Subj} is still waiting for the {product}{of_order}; it was due last week.{on_ticket}",
         "The {box} with the {product} has not shown up{of_order}.{on_ticket}",
         "No sign of the {product}{of_order} yet, {subj_short} is getting worried.{on_ticket}"),
        None, 0.6, False,
        ("where is {pos} {product}?", "why hasn't the {product} come yet?", "is the {product} late?"),
    ),
    "delivery_delayed": Event(
        ("Courier says the {box} is delayed at the {city} depot.",
         "The {box} is held up at the sorting centre; new estimate {day}."),
        ("delivery", "delayed"), 0.5,
    ),
    "delivery_lost": Event(
        ("The courier has declared the {box} lost.",
         "Carrier investigation closed: the {box} was lost in transit.",
         "Nobody can find it - the carrier wrote the {box} off as missing."),
        ("delivery", "lost"), 0.7, False,
        ("what happened to the missing {product}?", "did the courier lose the {product}?"),
    ),
    "delivery_delivered": Event(
        ("Courier confirms the {box} was delivered and signed for on {day}.",
         "The {box} turned up at last on {day}."),
        ("delivery", "delivered"), 0.5,
    ),
    # -- wrong item -------------------------------------------------------------------
    "wrong_report": Event(
        ("{Subj} received {a_other} instead of the {product}{of_order}.{on_ticket}",
         "Wrong item in the {box}: got {a_other}, not the {product}.{on_ticket}"),
        None, 0.7, False,
        ("did {subj_short} get sent the wrong thing instead of the {product}?",
         "mix-up with the {product} purchase"),
    ),
    "return_label": Event(
        ("Sent {obj} a return label for the {other}.",
         "Return label e-mailed for the wrong item.",
         "Prepaid label for sending back the {other} is in {pos} inbox."),
        ("return", "label_sent"), 0.5,
    ),
    "return_received": Event(
        ("Warehouse received the returned {other}.",
         "The {other} came back to us in good condition."),
        ("return", "received"), 0.5,
    ),
    # -- faulty -----------------------------------------------------------------------
    "defect_report": Event(
        ("The {product}{of_order} stopped working after {weeks} weeks.{on_ticket}",
         "{Subj} says the {product} will not turn on any more.{on_ticket}",
         "{Product} keeps cutting out after a few minutes of use.{on_ticket}"),
        None, 0.7, False,
        ("{product} no longer works - what is going on?", "is the {product} {subj_short} bought faulty?"),
    ),
    "troubleshoot": Event(
        ("Walked {obj} through a reset of the {product}; no luck.",
         "Tried a firmware update and a different socket with {obj}, still dead."),
        None, 0.5,
    ),
    "warranty": Event(
        ("Warranty replacement approved for the {product}.",
         "{Staff} agreed to replace the {product} under warranty."),
        ("replacement", "approved"), 0.7,
    ),
    # -- billing ----------------------------------------------------------------------
    "charge_report": Event(
        ("{Subj} was charged twice for order #{o}.{on_ticket}",
         "Duplicate payment of £{amount} on {pos} card for the {product}.{on_ticket}"),
        None, 0.7, False,
        ("was {subj_short} billed twice?", "double payment problem for the {product}"),
    ),
    # -- cancellation -----------------------------------------------------------------
    "cancel_request": Event(
        ("{Subj} wants to cancel the {product} order{of_order}.",
         "Asked to cancel the {product} before it ships."),
        ("cancellation", "requested"), 0.6, False,
        ("did {subj_short} try to call off the {product} purchase?",),
    ),
    "cancel_confirmed": Event(
        ("Order for the {product} cancelled; no charge will be taken.",
         "Cancellation confirmed for the {product}."),
        ("cancellation", "confirmed"), 0.6,
    ),
    # -- refunds ----------------------------------------------------------------------
    "refund_requested": Event(
        ("{Subj} wants {pos} money back for the {product}.",
         "Asked for a refund rather than a replacement."),
        ("refund", "requested"), 0.6,
    ),
    "refund_pending": Event(
        ("Refund for the {product} is pending until the warehouse confirms.",
         "Refund of £{amount} pending approval from {staff}.",
         "Refund in progress for the {product}; awaiting finance sign-off."),
        ("refund", "pending"), 0.6,
    ),
    "refund_approved": Event(
        ("Refund approved for the {product}: £{amount} back to the card within 5 days.",
         "{Staff} approved the refund of £{amount} for the {product}.",
         "Refund of £{amount} issued for the {product}; it shows in 3-5 working days.",
         "Good news for {obj}: the money for the {product} is on its way back."),
        ("refund", "approved"), 0.8, False,
        ("did {subj_short} get {pos} {q_money} for the {product}?", "has the {product} been reimbursed?",
         "was the {q_broken} {product} paid back?"),
    ),
    # -- replacements -----------------------------------------------------------------
    "replacement_approved": Event(
        ("Agreed to replace the {product} at no cost.",
         "Replacement {product} approved by {staff}."),
        ("replacement", "approved"), 0.6,
    ),
    "replacement_shipped": Event(
        ("Replacement {product} shipped with tracking {trk}.",
         "A new {product} was dispatched today, tracking {trk}.",
         "Sent out a fresh {product} to {obj}; it should land {day}."),
        ("replacement", "shipped"), 0.7, False,
        ("is a new {product} on its way to {obj}?", "did we send {obj} another {product}?"),
    ),
    "replacement_delivered": Event(
        ("Replacement {product} arrived safely, {subj_short} is happy.",
         "{Subj} confirmed the new {product} was received and works."),
        ("replacement", "delivered"), 0.5,
    ),
    # -- promises (temporal questions) ------------------------------------------------
    "promise": Event(
        ("Promised to call {obj} back on {day} with an update.",
         "We promised a £{voucher} voucher for the trouble.",
         "{Staff} promised {obj} a decision within 48 hours.",
         "Agreed to send a prepaid return label by tomorrow.",
         "Told {obj} we would chase the courier and reply by {day}."),
        None, 0.8, True,
    ),
    # -- follow-up tickets on the same order (graph hops) -----------------------------
    "refund_missing": Event(
        ("{Subj} says the refund for the {product} never reached {pos} account.{on_ticket}",
         "Still no money back for the {product} two weeks on.{on_ticket}"),
        None, 0.7,
    ),
    "refund_traced": Event(
        ("Finance traced the refund: it went to an expired card. Re-issued today.",
         "Bank reference found for the {product} refund; re-sent to the new card."),
        None, 0.6,
    ),
    "second_damage": Event(
        ("The replacement {product} is damaged as well.{on_ticket}",
         "Second {product} arrived {damage} too; {subj_short} is fed up.{on_ticket}"),
        None, 0.7,
    ),
    "ticket_resolved": Event(
        ("Ticket {t} resolved.",
         "Marked {t} as resolved.",
         "Case {t} closed - {subj_short} is happy with the outcome."),
        ("ticket", "resolved"), 0.5,
    ),
}
