"""Turns of the chat worlds (worlds.py): what a customer and a support bot say, per domain.

Each case type is (noun, items, openings, details, outcomes, follow-ups). ``{id}`` is the
case's identifier, ``{item}`` one of the items; an opening without ``{id}`` leaves the
identifier for later in the chat. Outcomes are the agent's last message of a chat, the
answer to "what happened with <id>?"; most do not repeat the identifier, as real agents'
closing messages mostly do not. Queries (worlds.py) are worded apart from these turns.
"""

from __future__ import annotations

CaseType = tuple[str, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, ...]]

DOMAINS: dict[str, dict[str, CaseType]] = {
    "retail": {
        "damaged": (
            "order", ("desk lamp", "coffee grinder", "ceramic vase", "bluetooth speaker", "air fryer", "mirror"),
            ("Hi, my {item} arrived broken, the box was crushed.", "Hello, order {id} came today and the {item} is cracked.",
             "The {item} I got is damaged, what can I do?", "hey the {item} from order {id} is smashed"),
            (("There is a dent all along the side and a piece is missing.", "I'm sorry about that. Could you send a photo of the damage?"),
             ("Just sent the photo to your e-mail.", "Got it, thank you. The damage is clear in the photo."),
             ("I'd rather not wait for a replacement.", "Understood, I can offer a refund instead."),
             ("Do I need to send it back?", "No need to return it, you can dispose of it.")),
            ("I've issued a full refund of {amount} to your original payment method; it shows in 3-5 business days.",
             "A replacement {item} ships tomorrow by express courier at no cost to you.",
             "Refund of {amount} approved. You don't need to return the damaged item.",
             "I've arranged a replacement; you'll get a tracking e-mail once it leaves the warehouse."),
            ("Hi again, I'm checking on the refund for order {id}.", "Following up on {id}, the replacement hasn't come."),
        ),
        "late": (
            "order", ("office chair", "standing desk", "rug", "kettle", "bookshelf", "duvet set"),
            ("My order {id} still hasn't arrived, it's been two weeks.", "Where is my {item}? It was due last week.",
             "hi, order {id} shows in transit for ten days", "I never got my {item}."),
            (("The tracking page hasn't changed since Monday.", "Let me check with the courier for you."),
             ("I need it before the weekend.", "I understand, I'll see what I can do."),
             ("Can you tell me where it is exactly?", "The courier lists it at the regional depot."),
             ("This is the second time this happens.", "I'm sorry, that's not the service we want to give.")),
            ("The courier confirmed the parcel was lost, so I've refunded {amount} to your card.",
             "I've reshipped the {item} with next-day delivery; it will arrive on {day}.",
             "The parcel is out for delivery today; I've added a {voucher} voucher to your account for the delay.",
             "I've opened a trace with the courier and will e-mail you by {day} with the result."),
            ("Hi, any update on the missing {item}?", "Following up about {id}, still nothing arrived."),
        ),
        "return": (
            "order", ("jacket", "pair of boots", "linen shirt", "winter coat", "backpack", "dress"),
            ("I want to return the {item} from order {id}, it doesn't fit.", "How do I send back my {item}?",
             "Hi, I'd like to exchange the {item} for a bigger size.", "can I return order {id}"),
            (("It's too small around the shoulders.", "Sorry it didn't fit. Would you like an exchange or a refund?"),
             ("A refund please.", "No problem, I'll set that up."),
             ("Do I pay for the return shipping?", "Returns are free within 30 days."),
             ("I still have the tags on it.", "Great, that makes the return straightforward.")),
            ("I've e-mailed you a prepaid return label; the refund of {amount} follows once the parcel reaches us.",
             "Exchange confirmed: the larger size ships today and you can send the old one back with the label I sent.",
             "The return is registered; drop the parcel at any post office within 14 days.",
             "Your return was received and {amount} is on its way back to your card."),
            ("Hi, I sent the {item} back last week, is the refund done?", "Checking on the return for {id}."),
        ),
        "charge": (
            "order", ("blender", "set of pans", "vacuum cleaner", "monitor", "printer", "toaster"),
            ("I was charged twice for order {id}.", "There are two payments for my {item} on my statement.",
             "why did you take {amount} twice?", "Hi, I think I was overcharged for the {item}."),
            (("Both charges are from the same day.", "I can see the duplicate authorisation on our side."),
             ("My bank says it's not pending, it's taken.", "Thanks, that helps me escalate it."),
             ("Can you send me an invoice too?", "Of course, I'll attach it to the confirmation e-mail.")),
            ("I've reversed the duplicate charge of {amount}; your bank will release it within 5 days.",
             "The second payment was only a hold and has been cancelled; nothing more will be taken.",
             "Refunded the extra {amount} and sent a corrected invoice to your e-mail."),
            ("Following up on the double charge for {id}.", "Hi, the extra payment is still on my card."),
        ),
    },
    "airline": {
        "change": (
            "reservation", ("flight to Lisbon", "flight to Denver", "flight to Oslo", "trip to Boston", "flight to Madrid"),
            ("I need to change the date of my {item}.", "Hi, can I move reservation {id} to a later day?",
             "I want to fly a day earlier on booking {id}.", "Is it possible to change my {item}?"),
            (("I'd like the Friday morning departure instead.", "Let me look at the Friday flights for you."),
             ("Is there a fee for this?", "The fare difference applies but no change fee on your ticket."),
             ("Window seat if possible.", "I've noted the seat preference."),
             ("Same return flight as before.", "The return stays as it is.")),
            ("Done: your {item} is now on {day}, fare difference {amount} charged to the card on file.",
             "The change is confirmed and your new e-ticket is in your inbox.",
             "There was no seat on {day}, so I've kept your original flight and put you on the waitlist.",
             "Your reservation now departs {day} morning; no extra charge was needed."),
            ("Hi, I changed {id} last week but the app shows the old date.", "Checking my changed booking {id}."),
        ),
        "cancel": (
            "reservation", ("flight to Paris", "flight to Chicago", "trip to Rome", "flight to Dublin", "flight to Seattle"),
            ("Please cancel my {item}.", "I need to cancel reservation {id}, family emergency.",
             "hi, cancel booking {id} please", "Can I get my money back for the {item}?"),
            (("Something came up and I can't travel.", "I'm sorry to hear that. Let me check your fare rules."),
             ("I bought travel insurance with it.", "Good, that covers the cancellation."),
             ("Will I get the taxes back at least?", "Taxes are always refundable.")),
            ("The reservation is cancelled and {amount} will be refunded to your card within 7 days.",
             "Cancelled; since the fare is non-refundable you have a travel credit of {amount} valid for a year.",
             "I've cancelled both flights and refunded the taxes of {amount}.",
             "Your cancellation went through under the insurance; the full {amount} is being refunded."),
            ("Hi, the refund for {id} hasn't arrived.", "Following up on the cancelled booking {id}."),
        ),
        "baggage": (
            "reservation", ("suitcase", "golf bag", "stroller", "guitar case", "ski bag"),
            ("My {item} didn't arrive on my flight.", "The airline lost my {item}, booking {id}.",
             "hi, my bag from reservation {id} is missing", "My {item} came back damaged."),
            (("It's a large blue one with a red tag.", "Thanks, that description helps the search."),
             ("I filed a report at the airport.", "Good, I can see the report linked to your booking."),
             ("I had to buy clothes in the meantime.", "Keep the receipts, we reimburse essentials.")),
            ("Your {item} was found and will be delivered to your address on {day}.",
             "I've approved {amount} for the essentials you bought; it goes to your card.",
             "The bag is still being traced; I've escalated it and you'll hear from baggage services by {day}.",
             "Compensation of {amount} for the damaged {item} is approved."),
            ("Hi, any news on my {item}?", "Checking on the lost bag from {id}."),
        ),
        "upgrade": (
            "reservation", ("flight to Tokyo", "flight to New York", "flight to Sydney", "trip to Athens"),
            ("Can I upgrade my {item} to business?", "How much is an upgrade on reservation {id}?",
             "I'd like to use my miles to upgrade booking {id}.", "Is there space in premium on my {item}?"),
            (("I have about 40,000 miles.", "That's enough for one leg."),
             ("Only the outbound please.", "Sure, I'll price just the outbound."),
             ("Does it include lounge access?", "Yes, lounge access comes with the upgrade.")),
            ("Upgraded: you're in business on the outbound, paid with miles.",
             "The upgrade costs {amount}; I've held the seat until {day} for you to confirm.",
             "There's no premium seat left; I've put you on the upgrade list.",
             "Upgrade confirmed for {amount} and your new boarding pass is in your e-mail."),
            ("Hi, did the upgrade on {id} go through?", "Following up on my upgrade request for {id}."),
        ),
    },
    "helpdesk": {
        "device": (
            "return", ("laptop", "docking station", "headset", "router", "tablet", "barcode scanner"),
            ("My {item} won't power on anymore.", "The {item} we got last month keeps rebooting, ref {id}.",
             "hi, the {item} is faulty again", "We need to send back a broken {item}."),
            (("It shows an orange light and then nothing.", "Have you tried a different power adapter?"),
             ("Yes, same result with two adapters.", "Thanks, that rules out the charger."),
             ("It's still under warranty I think.", "It is, the warranty runs until next year."),
             ("We need it working for the team by Monday.", "I'll mark it as urgent.")),
            ("I've issued a return authorisation; a courier collects the {item} on {day} and a replacement ships the same day.",
             "The replacement {item} has shipped; the faulty one can go back in the same box.",
             "Repair completed under warranty and the {item} is on its way back to you.",
             "We've credited {amount} since this model can't be repaired."),
            ("Hi, the courier didn't collect the {item} for {id}.", "Any update on return {id}?"),
        ),
        "incident": (
            "incident", ("VPN", "e-mail server", "shared drive", "payroll portal", "SSO login", "printer queue"),
            ("The {item} is down for our whole office.", "Users can't log into the {item} since this morning, {id}.",
             "{item} not working, reference {id}", "We're getting errors from the {item}."),
            (("It says authentication failed.", "Can you send me a screenshot of the error?"),
             ("About twenty people are affected.", "Thanks, I've raised the priority."),
             ("It worked fine yesterday.", "There was a change last night, I'm checking it.")),
            ("The {item} is back up: an expired certificate was renewed. Closing the incident.",
             "A fix was rolled back at 14:00 and the {item} works again for everyone.",
             "Engineering found the cause and will patch the {item} tonight; a workaround is in your e-mail.",
             "Resolved: the {item} accounts were unlocked and passwords reset."),
            ("Hi, the {item} problem from {id} is back.", "Is {id} really fixed? Some users still see it."),
        ),
        "licence": (
            "request", ("design software", "CAD licence", "antivirus seats", "office suite", "analytics plan"),
            ("We need five more seats for the {item}.", "Our {item} expired, can you renew it? It's under {id}.",
             "hi, request {id} for the {item}", "How do I add users to the {item}?"),
            (("Three for the new starters, two spare.", "Got it, five seats."),
             ("Can it start on the first of the month?", "Yes, I'll date it from the first."),
             ("Please put it on the same invoice.", "Will do.")),
            ("Five seats were added to the {item}; the invoice for {amount} follows by e-mail.",
             "The {item} is renewed for twelve months; the new key is in your inbox.",
             "Request approved; the extra users can sign in from {day}.",
             "We can't add seats mid-term, so I've quoted {amount} for an upgrade to the next plan."),
            ("Hi, the new seats from {id} aren't showing.", "Checking on {id}, did the renewal go through?"),
        ),
    },
}

GENERAL: dict[str, tuple[tuple[str, str], ...]] = {
    "retail": (("Do you ship to Ireland?", "Yes, we ship to Ireland in 3-5 days."),
               ("Is the store open on Sunday?", "Our shop is open 10 to 4 on Sundays."),
               ("Can I change the address on my account?", "Sure, I've updated it for you."),
               ("Do you have gift cards?", "Yes, digital gift cards from 10 to 200.")),
    "airline": (("What's the baggage allowance on economy?", "One cabin bag and one 23 kg checked bag."),
                ("Can I bring my dog on board?", "Small pets in a carrier are allowed in the cabin."),
                ("How early should I check in?", "Online check-in opens 24 hours before departure."),
                ("Do you fly to Reykjavik?", "Yes, three times a week in summer.")),
    "helpdesk": (("How do I reset my password?", "Use the self-service page; I've sent you the link."),
                 ("What are your support hours?", "We're here 8 to 8 on weekdays."),
                 ("Can you add a new user to our account?", "Done, they'll get an invitation e-mail."),
                 ("Where do I find our invoices?", "Under Billing in the admin portal.")),
}

GREETINGS = ("Happy to help.", "Sorry to hear that.", "Thanks for reaching out.", "I can help with that.")
ASK_IDENTITY = {
    "handle": ("Could you give me your user id so I can look you up?", "Can I have your name and user id, please?",
               "To find your account I need your user id or your name and zip code."),
    "email": ("Could you give me the e-mail on your account?", "Can I have your name and e-mail, please?",
              "What's the e-mail address you used?"),
}
CONFIRM = ("Thanks{first}, I've found your account.", "Thank you{first}, I have your details up.",
           "Great{first}, I can see your account now.", "Thanks{first}. One moment while I check.")
ASK_ID = {"order": "Which order is it about?", "reservation": "What's the reservation code?",
          "return": "What's the return reference?", "incident": "Do you have the incident number?",
          "request": "What's the request number?"}
GIVE_ID = ("It's {id}.", "{id}", "The number is {id}.", "Sure, {id}.", "it's {noun} {id}")
SEE_ID = ("I see {noun} {id} for the {item}.", "Okay, {noun} {id}, the {item}.", "I have {id} open here.",
          "Found {id}.")
CLOSE = ("Okay, thanks.", "Great, thank you!", "thanks", "Alright.", "OK that works.", "Perfect, thanks for the help.")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
HISTORY_NAME = ("{Full} previous interactions", "{Full} history", "what has {Full} contacted us about?",
                "past conversations with {Full}")
HISTORY_HANDLE = ("{h} history", "previous chats of {h}", "everything about {h}", "{h} past contacts")
OUTCOME = {
    "order": ("what happened with order {id}?", "status of order {id}", "how did we resolve {id}?"),
    "reservation": ("what happened with reservation {id}?", "status of booking {id}", "how did {id} end?"),
    "return": ("what happened with {id}?", "outcome of return {id}", "status of {id}"),
    "incident": ("what happened with {id}?", "how was {id} resolved?", "status of incident {id}"),
    "request": ("what happened with {id}?", "status of request {id}", "outcome of {id}"),
}
