"""Texts the embedding runtimes are compared on."""

# Short ones with identifiers, one character, and one past the model's token limit
# (truncated).
TEXTS = [
    "Where is order #4521? The parcel arrived damaged.",
    "Jane Doe wants a refund for the broken charger",
    "password reset link expired; locked out of the admin console",
    "x",
    "a long message " * 200,
]
