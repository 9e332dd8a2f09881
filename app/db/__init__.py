"""The database: one interface (`Database`), on SQLite (the default) or PostgreSQL.

Code outside this package imports from here only; the drivers (sqlite3, aiosqlite, asyncpg)
and their row and exception types stay inside it.
"""

from __future__ import annotations

from app.config import Settings
from app.db.base import (
    AfterCommit,
    ConflictError,
    Database,
    DatabaseError,
    Dialect,
    Params,
    Result,
    RetryableError,
    Row,
    Transaction,
    chunks,
    current_transaction,
    placeholders,
)
from app.db.postgres import PostgresDatabase
from app.db.sqlite import SqliteDatabase

__all__ = [
    "AfterCommit",
    "ConflictError",
    "Database",
    "DatabaseError",
    "Dialect",
    "Params",
    "PostgresDatabase",
    "Result",
    "RetryableError",
    "Row",
    "SqliteDatabase",
    "Transaction",
    "chunks",
    "current_transaction",
    "database_from_settings",
    "placeholders",
]


def database_from_settings(settings: Settings) -> Database:
    """PostgreSQL when a database URL is set, else the SQLite file (not opened yet)."""
    if settings.database_url is not None:
        return PostgresDatabase(settings.database_url)
    return SqliteDatabase(settings.db_path)
