"""What identifier extraction costs per stored text: ``python -m benchmarks.identifiers``.

1,000 chat messages in the shape bots store them (``user: ...`` / ``assistant: ...``),
a third naming an id of some format, timed through ``find_rule_entities`` (every rule,
shapes included), ``find_identifiers`` (the shape scan alone) and ``weak_identifiers``
(the codes a store looks up when no kind word names them). The statistical model
is not timed: it costs ~1 ms a text, these rules ~10-40 µs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from casegraph.extractors import find_identifiers, find_rule_entities, weak_identifiers

_SAYS = [
    "user: hi, my order {id} has not arrived yet, can you check?",
    "assistant: I can see **{id}** left our warehouse on Monday and should arrive by Friday.",
    "user: I need to change reservation {id} to Friday, is that possible?",
    "assistant: Done, {id} now departs on Friday at 9:40. Anything else I can help with?",
    "user: my account is {id} and my e-mail is jane.doe@example.com",
    "assistant: Thanks! I've issued a refund of $19.99 to your card; it takes 3-5 business days.",
    "user: the tracking number {id} shows no movement since 2024-01-15, please help",
    "assistant: I'm sorry about that. I've opened ticket #4521 and escalated it to the carrier.",
    "user: can you call me on +44 20 7946 0958 after 5pm?",
    "assistant: Of course. Your 30-day return window is still open for the iPhone15 case.",
    "user: it still says v2.3.1 after the update and the 16GB model is slow",
    "assistant: Please restart the device, then try again; if it fails we'll send a replacement.",
]
_IDS = [
    lambda r: f"#W{r.randint(1_000_000, 9_999_999)}",
    lambda r: "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6)),
    lambda r: f"{r.choice(['jane', 'omar', 'li', 'sofia'])}_{r.choice(['doe', 'khan', 'wu'])}_{r.randint(1000, 9999)}",
    lambda r: f"RMA-{r.randint(10_000, 99_999)}",
    lambda r: f"1Z{r.randint(10**15, 10**16 - 1)}",
    lambda r: f"{r.randint(100, 999)}-{r.randint(10**6, 10**7 - 1)}-{r.randint(10**6, 10**7 - 1)}",
]


def texts(n: int, seed: int = 7) -> list[str]:
    r = random.Random(seed)
    return [r.choice(_SAYS).format(id=r.choice(_IDS)(r)) for _ in range(n)]


def _per_text(fn, corpus: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()  # CPU time: the machine is shared
        for t in corpus:
            fn(t)
        best = min(best, time.process_time() - t0)
    return best / len(corpus) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    corpus = texts(args.texts)
    chars = statistics.mean(len(t) for t in corpus)
    rules = _per_text(find_rule_entities, corpus, args.rounds)
    shapes = _per_text(lambda t: list(find_identifiers(t)), corpus, args.rounds)
    weak = _per_text(weak_identifiers, corpus, args.rounds)
    found = sum(1 for t in corpus for _ in find_identifiers(t))
    print(f"{len(corpus)} texts, {chars:.0f} chars on average, {found} identifiers")
    print(f"find_rule_entities: {rules:.1f} µs a text (best of {args.rounds})")
    print(f"find_identifiers:   {shapes:.1f} µs a text (best of {args.rounds})")
    print(f"weak_identifiers:   {weak:.1f} µs a text (best of {args.rounds}; a store runs it too)")


if __name__ == "__main__":
    main()
