"""The test's database as a `run.py` subprocess sees it: the flags that select it, and reads
from outside the server (SQLite's file in WAL mode, or a connection of our own to PostgreSQL)."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pg import Cluster


@dataclass(frozen=True)
class OutsideDatabase:
    workdir: Path  # the SQLite file and the secret key live here
    url: str | None = None  # PostgreSQL instead of the file
    cluster: Cluster | None = None

    @property
    def path(self) -> Path:
        return self.workdir / "app.db"

    def flags(self) -> list[str]:
        if self.url is None:
            return ["--db", str(self.path)]
        # The key file would otherwise default to data/ in the working directory (the repo).
        return ["--database-url", self.url, "--secret-key-file", str(self.workdir / "secret.key")]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One read, with `?` placeholders, while the server runs."""
        if self.url is None:
            uri = f"file:{self.path}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
                return conn.execute(sql, params).fetchall()
        assert self.cluster is not None
        return self.cluster.query(self.url, sql, params)
