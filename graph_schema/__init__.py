"""Cypher DDL for CaseGraph's Kùzu database, as ordered, recorded migrations.

Each ``NNN_name.cypher`` file is one migration: statements separated by ``;`` on their
own line ends. ``casegraph.storage.embedded.graph.GraphStore`` applies the files in order at start-up and
records each applied name in the ``Migration`` table, so a migration runs once and the
schema version of a data directory is the name of its last applied migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    statements: tuple[str, ...]


def split_statements(text: str) -> tuple[str, ...]:
    """Split a Cypher file into statements, dropping ``//`` comment lines."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("//")]
    parts = "\n".join(lines).split(";")
    return tuple(p.strip() for p in parts if p.strip())


def migrations() -> list[Migration]:
    """All migrations shipped with this version, in the order they apply."""
    files = sorted(
        (f for f in resources.files(__package__).iterdir() if f.name.endswith(".cypher")),
        key=lambda f: f.name,
    )
    return [Migration(f.name.removesuffix(".cypher"), split_statements(f.read_text())) for f in files]
