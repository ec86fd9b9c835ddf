"""CaseGraph: memory for customer-support bots.

The data flows one way through the package:
store (memory.py) -> extract (extractors/) -> embed (embeddings.py)
-> graph + vectors (graph.py, vectors.py) -> recall (recall.py) -> rank (ranking.py)
-> GraphQL (api/).
"""

__version__ = "0.1.0"
