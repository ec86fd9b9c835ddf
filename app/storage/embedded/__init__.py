"""The embedded engine: Kùzu + USearch + tantivy in one data directory, in this process.

Kùzu 0.11.3's faults and how this engine steps around them: ``docs/kuzu-quirks.md``.
"""
