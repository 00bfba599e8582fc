"""The plan journal's SQLite connection, with its failures counted where they happen.

Every statement of the journal goes through ``CountedConnection``; one that raises
``sqlite3.Error`` (disk full, I/O error, a locked or corrupt file, a constraint refused) adds
one to ``errors`` and is raised on unchanged. The cluster manager exports the count
(``vmgrid_cluster_journal_errors_total``) and an alert fires on its increase.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class CountedConnection:
    """The sqlite3 calls the journal makes, each counted in ``errors`` when it fails."""

    __slots__ = ("_db", "errors")

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.errors = 0

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.Error:
            self.errors += 1
            raise

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        try:
            return self._db.executemany(sql, rows)
        except sqlite3.Error:
            self.errors += 1
            raise

    def executescript(self, script: str) -> sqlite3.Cursor:
        try:
            return self._db.executescript(script)
        except sqlite3.Error:
            self.errors += 1
            raise

    @property
    def raw(self) -> sqlite3.Connection:
        """The connection itself (its statements are not counted)."""
        return self._db

    def close(self) -> None:
        self._db.close()


def counted_connection(path: str | Path) -> CountedConnection:
    """The journal's connection to `path` (autocommit: the journal opens its transactions)."""
    return CountedConnection(
        sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    )
