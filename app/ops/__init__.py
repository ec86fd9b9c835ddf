"""Operations: settings, logs, metrics, API keys, backups, the ``casegraph`` command line,
import/export (JSONL), re-embedding and native-memory trimming.

May import every other package (the command line opens the services); nothing in the domain
or storage imports ops, except ``ops.settings`` (typed settings, read once at start-up).
"""
