"""CaseGraph: memory for customer-support bots.

The data flows one way through the package:
store (memory.py) -> extract (extractors/) -> embed (embeddings.py)
-> graph + vectors (graph.py, vectors.py) -> recall (recall.py) -> rank (ranking.py)
-> GraphQL (api/).
"""

__version__ = "0.1.0"

import os as _os

# Before anything loads torch (spaCy's thinc imports it too): OpenMP threads that wait
# should sleep, not spin. CaseGraph runs spaCy, Kùzu and the event loop beside the model on
# a few cores. With the default (spin), on 2 cores a query embedding that overlapped Kùzu's
# keyword/graph queries took 50-400 ms instead of ~10 ms, and 8 clients' single stores
# used ~180 ms of CPU each instead of ~30 ms. Set OMP_WAIT_POLICY to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
