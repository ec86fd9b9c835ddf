"""CaseGraph: memory for customer-support bots.

The data flows one way through the package:
store (memory.py) -> extract (extractors/) -> embed (embeddings.py)
-> graph + vectors (graph.py, vectors.py) -> recall (recall.py) -> rank (ranking.py)
-> GraphQL (api/).
"""

__version__ = "0.1.0"

import os as _os

# Before anything loads torch (spaCy's thinc imports it too): OpenMP threads that wait
# should sleep, not spin. With the default (spin), a query embedding that overlaps Kùzu's
# keyword/graph queries, or any other busy process, on a 2-core machine took 50-400 ms
# instead of ~10 ms (one descheduled thread stalls every parallel region), and batch
# encoding ran 2-3x slower on a loaded machine. Set OMP_WAIT_POLICY to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
