"""Words and sentence templates for the generated support histories.

Memories and queries draw from DIFFERENT wordings on purpose: a memory says "the parcel
arrived smashed", the question asks "did the package come broken?". Templates use
``{slots}`` filled by histories.py; ``{of_order}`` / ``{on_ticket}`` may come out empty,
so a memory often does not name its order or ticket in the text (only in its tags), and
``{subj}`` is often a pronoun or "the customer" rather than the customer's name.
"""

from __future__ import annotations

FIRST_NAMES = (
    ("Jane", "f"), ("John", "m"), ("Maria", "f"), ("Mark", "m"), ("Anna", "f"), ("David", "m"),
    ("Sarah", "f"), ("James", "m"), ("Laura", "f"), ("Peter", "m"), ("Emma", "f"), ("Tom", "m"),
    ("Sophie", "f"), ("Daniel", "m"), ("Olivia", "f"), ("Michael", "m"), ("Chloe", "f"), ("Paul", "m"),
    ("Grace", "f"), ("Sam", "m"), ("Lucy", "f"), ("Ben", "m"), ("Hannah", "f"), ("Chris", "m"),
    ("Amy", "f"), ("Luke", "m"), ("Rachel", "f"), ("Adam", "m"), ("Zoe", "f"), ("Ryan", "m"),
    ("Ella", "f"), ("Jack", "m"), ("Mia", "f"), ("Oliver", "m"), ("Isla", "f"), ("Harry", "m"),
    ("Fatima", "f"), ("Ahmed", "m"), ("Priyanka", "f"), ("Ravi", "m"), ("Mei", "f"), ("Wei", "m"),
    ("Elena", "f"), ("Marco", "m"), ("Ines", "f"), ("Pablo", "m"), ("Katarzyna", "f"), ("Piotr", "m"),
    ("Aoife", "f"), ("Sean", "m"), ("Freya", "f"), ("Noah", "m"), ("Ruby", "f"), ("Leo", "m"),
    ("Nadia", "f"), ("Omar", "m"), ("Julia", "f"), ("Felix", "m"), ("Alice", "f"), ("George", "m"),
)
LAST_NAMES = (
    "Doe", "Dorsey", "Dobson", "Smith", "Smythe", "Jones", "Johnson", "Brown", "Browne", "Taylor",
    "Wilson", "Wilkins", "Davies", "Davis", "Evans", "Thomas", "Roberts", "Robertson", "Walker",
    "Wright", "White", "Whitehead", "Hall", "Green", "Greene", "Wood", "Clarke", "Clark", "Hughes",
    "Lewis", "Edwards", "Turner", "Hill", "Moore", "Cooper", "King", "Kingsley", "Baker", "Harris",
    "Martin", "Martins", "Patel", "Khan", "Ali", "Singh", "Chen", "Li", "Nowak", "Kowalski",
    "Garcia", "Lopez", "Rossi", "Murphy", "Kelly", "Byrne", "Novak", "Fischer", "Weber", "Silva",
    "Santos", "Lee", "Young", "Scott", "Ward", "Price", "Bell", "Fox", "Gray", "Grey", "Stone",
)
STAFF = ("Priya", "Marek", "Lena", "Tariq", "Josie", "Callum")
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
CITIES = ("Leeds", "Bristol", "Manchester", "Glasgow", "Cardiff", "Norwich", "York", "Brighton")
STREETS = ("Mill Lane", "Station Road", "Park Avenue", "Church Street", "Elm Grove", "High Street")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")

# Three shops (three bots = three tenants), each with its own catalogue.
SHOPS = {
    "homeware-bot": (
        "kettle", "toaster", "espresso machine", "blender", "air fryer", "stand mixer",
        "vacuum cleaner", "desk lamp", "duvet", "frying pan set", "knife block", "microwave",
        "rice cooker", "coffee grinder", "bread maker", "table fan", "electric heater", "steam iron",
        "food processor", "slow cooker",
    ),
    "gadgets-bot": (
        "wireless headphones", "smart watch", "phone case", "tablet", "e-reader", "bluetooth speaker",
        "fitness tracker", "laptop stand", "USB-C charger", "power bank", "webcam", "mechanical keyboard",
        "gaming mouse", "wifi router", "smart plug", "doorbell camera", "action camera", "portable SSD",
        "noise-cancelling earbuds", "drone",
    ),
    "fashion-bot": (
        "running shoes", "winter jacket", "wool jumper", "denim jeans", "leather boots", "rain coat",
        "backpack", "sunglasses", "silk scarf", "trainers", "summer dress", "hiking boots",
        "suit jacket", "yoga leggings", "handbag", "wrist watch", "swimsuit", "parka", "sandals", "beanie",
    ),
}

# Memory wording (what the bot wrote down).
BOX = ("parcel", "package", "box", "delivery", "shipment")
DAMAGE = ("cracked", "smashed", "dented", "scratched", "shattered", "broken", "crushed")
OF_ORDER = (" from order #{o}", " in order {o}", " (order #{o})", " on ORD-{o}", " from #{o}", "", "", "")
ON_TICKET = (" Ticket {t} opened.", " Logged as {t}.", " Case {t}.", "", "")

# Question wording (what the bot asks later): deliberately different words.
Q_BOX = ("package", "parcel", "order", "item")
Q_BROKEN = ("broken", "damaged", "in pieces", "faulty")
Q_MONEY = ("money back", "refund", "reimbursement", "credit")

# Preference topics: (topic, memory variants, question variants). {subj}/{Subj}/{pos}/{obj}
# are the customer; {Full} is the name as a caller would type it.
PREFERENCES = {
    "contact_channel": (
        (
            "{Subj} prefers to be contacted by {channel}.",
            "Please reach {obj} by {channel} only - {subj_short} rarely picks up unknown numbers.",
            "{Subj} asked us to use {channel} for any updates.",
            "Contact preference noted: {channel}.",
            "{Subj} says {channel} is the best way to get hold of {obj}.",
        ),
        (
            "How does {Full} like to be contacted?",
            "best way to reach {Full}",
            "should we phone or write to {Full}?",
            "{Full} preferred contact method",
        ),
    ),
    "contact_time": (
        (
            "Only call {obj} {time}.",
            "{Subj} is at work during the day; ring {obj} {time}.",
            "Best time to phone: {time}.",
        ),
        (
            "when is a good time to ring {Full}?",
            "what hours can we phone {Full}?",
        ),
    ),
    "delivery": (
        (
            "Couriers should {drop}.",
            "Delivery instruction from {subj}: {drop}.",
            "{Subj} wants future deliveries to {drop_alt}.",
        ),
        (
            "where should the courier leave {Full}'s orders?",
            "{Full} delivery instructions",
            "any special drop-off request from {Full}?",
        ),
    ),
    "language": (
        (
            "{Subj} is more comfortable in {language}; offer a {language}-speaking agent.",
            "Prefers to be served in {language}.",
        ),
        (
            "which language should we use with {Full}?",
            "does {Full} need a translator or another language?",
        ),
    ),
    "marketing": (
        (
            "{Subj} does not want any marketing e-mails or newsletters.",
            "Unsubscribe {obj} from promotions - {subj_short} found them annoying.",
            "Opted out of marketing messages at {pos} request.",
        ),
        (
            "can we send {Full} our promotional newsletter?",
            "is {Full} happy to receive offers?",
        ),
    ),
}
CHANNELS = ("email", "e-mail", "text message", "SMS", "WhatsApp", "phone", "live chat", "post")
CALL_TIMES = ("after 6pm", "before 9am", "at lunchtime", "on weekends", "after 5.30pm on weekdays")
DROPS = (
    ("leave parcels with the neighbour at number {n}", "go to the neighbour at number {n}"),
    ("use the parcel locker at the {city} station", "be sent to the {city} station locker"),
    ("leave it in the porch, never on the doorstep", "be left in the porch"),
    ("deliver to {pos} office on {street}", "go to {pos} office on {street}"),
    ("ring twice, the bell is faint", "come with two rings of the bell"),
)
LANGUAGES = ("Spanish", "Polish", "French", "Portuguese", "Italian", "German", "Welsh")

# Small talk and routine notes: similar across customers, so they are dense-search
# distractors. No customer-specific facts.
FILLER = (
    "Asked about opening hours over the bank holiday.",
    "Verified identity with postcode and date of birth.",
    "Explained the 30-day returns policy.",
    "Chat dropped briefly; {subj_short} reconnected.",
    "{Subj} thanked {staff} for the quick help.",
    "Checked stock of the {other} in another colour.",
    "Asked whether gift wrapping is available.",
    "Pointed {obj} to the size guide on the website.",
    "Asked for a copy of the invoice; sent it to the account e-mail.",
    "Reminded {obj} that the loyalty points expire at the end of the year.",
    "{Subj} asked if we price-match other retailers; explained we do not.",
    "Updated the billing address on the account.",
)

# Within-session facts: what a customer says during the chat that the bot needs minutes
# later. (slot, memory variants, question variants)
SESSION_FACTS = (
    (
        "address",
        ("{Subj} wants the replacement sent to {pos} office: {n} {street}, {city}.",
         "New delivery address for this case: {n} {street}, {city}."),
        ("where should the replacement go?", "what address did {subj_short} give for the new one?"),
    ),
    (
        "tried",
        ("{Subj} already tried a factory reset and charging it overnight.",
         "Troubleshooting done by {obj} before the chat: restarted it twice and swapped the cable."),
        ("what has {subj_short} done to fix it so far?", "which troubleshooting steps are already done?"),
    ),
    (
        "callback",
        ("Call {obj} back today between 4 and 5pm on the mobile.",
         "{Subj} can only talk after 4pm today; agreed a callback then."),
        ("when should we ring {obj} back?", "what time did we agree for the follow-up call?"),
    ),
    (
        "keep_item",
        ("Told {obj} {subj_short} can keep the faulty one, no need to post it back.",
         "No return needed for the faulty unit - {subj_short} may keep it."),
        ("does {subj_short} have to send the broken one back?", "must the defective item be returned?"),
    ),
    (
        "variant",
        ("For the exchange {subj_short} wants navy, size M.",
         "Exchange preference: the green one in a large."),
        ("which colour and size did {subj_short} pick for the swap?", "what variant is the exchange for?"),
    ),
    (
        "photos",
        ("Photos of the damage uploaded in the chat: three pictures, the corner is split.",
         "{Subj} shared pictures showing the split corner of the box."),
        ("did {subj_short} send us any pictures?", "do we have images of the damage?"),
    ),
    (
        "payment",
        ("{Subj} paid with PayPal, so the refund must go back to PayPal.",
         "Payment was by gift card; refund as store credit."),
        ("how did {subj_short} pay for it?", "where should the money be returned to?"),
    ),
    (
        "deadline",
        ("{Subj} needs it before {pos} daughter's birthday on Saturday.",
         "It is a wedding present; {subj_short} needs it by Friday at the latest."),
        ("is there a date {subj_short} needs it by?", "why is {subj_short} in a hurry?"),
    ),
)
