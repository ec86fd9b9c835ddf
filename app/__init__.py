"""CaseGraph: memory for customer-support bots.

The data flows one way through the package:
store (memory.py) -> extract (extractors/) -> embed (embeddings.py)
-> graph + vectors (graph.py, vectors.py) -> recall (recall.py) -> rank (ranking.py)
-> GraphQL (api/).
"""

import os

# OpenMP (torch's intra-op threads) reads this once, when the library loads, so it is set
# here, before anything imports torch. By default its idle threads spin, which suits a
# process that only runs the model; CaseGraph runs spaCy, Kùzu and the event loop beside
# it on a few cores, and spinning threads starved them: on 2 cores, 8 clients' single
# stores used ~180 ms of CPU each instead of ~30 ms. Set the variable to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
