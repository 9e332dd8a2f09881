"""Failed-login limits, kept in the database so they hold across processes and restarts.

An attempt is counted *before* its password is verified: one write transaction counts the
recent attempts for the account and for the address and, when both are under their limits,
reserves a row for each. Concurrent logins for one account or one address are serialised by
that transaction's lock on both keys, so a burst of 200 guesses at one account gets exactly the
allowed number verified; the rest are refused before any hashing. A failed attempt keeps its
rows (they are the failures); a successful one deletes its own reservation and the account's
failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.db import Database, Transaction


@dataclass(frozen=True)
class Reservation:
    """The rows one login attempt reserved; released when the password was right."""

    account: str
    address_row: int


@dataclass(frozen=True)
class Blocked:
    retry_after: int  # whole seconds, at least 1


class LoginLimiter:
    def __init__(
        self,
        db: Database,
        *,
        max_per_account: int,
        max_per_address: int,
        window_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window = window_seconds
        self._clock = clock

    async def reserve(self, account: str, address: str) -> Reservation | Blocked:
        """Count this attempt against both keys, or say how long they are blocked."""
        now = self._clock()
        since = now - self.window
        async with self._db.transaction() as tx:
            # Another process counting for the same account or address waits until this
            # transaction has committed its reservation (on SQLite every write transaction
            # already waits for the one before).
            await tx.lock(f"login:account:{account}", f"login:address:{address}")
            waits = [
                await self._wait(tx, scope, key, limit, since, now)
                for scope, key, limit in (
                    ("account", account, self.max_per_account),
                    ("address", address, self.max_per_address),
                )
            ]
            blocked = [wait for wait in waits if wait is not None]
            if blocked:
                return Blocked(max(blocked))
            await tx.execute(
                "INSERT INTO login_attempts (scope, key, attempted_at) VALUES ('account', ?, ?)",
                (account, now),
            )
            address_row = await tx.fetch_value(
                "INSERT INTO login_attempts (scope, key, attempted_at) VALUES ('address', ?, ?)"
                " RETURNING id",
                (address, now),
            )
        return Reservation(account, int(address_row))

    async def _wait(
        self, tx: Transaction, scope: str, key: str, limit: int, since: float, now: float
    ) -> int | None:
        """Seconds until `key` may try again, or None when it is under its limit."""
        row = await tx.fetch_one(
            "SELECT count(*), min(attempted_at) FROM login_attempts"
            " WHERE scope = ? AND key = ? AND attempted_at > ?",
            (scope, key, since),
        )
        assert row is not None
        if row[0] < limit:
            return None
        return max(1, int(row[1] + self.window - now) + 1)

    async def succeeded(self, reservation: Reservation) -> None:
        """The password was right: this attempt is no failure, and the account starts afresh."""
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM login_attempts WHERE id = ?", (reservation.address_row,))
            await tx.execute(
                "DELETE FROM login_attempts WHERE scope = 'account' AND key = ?",
                (reservation.account,),
            )

    async def prune(self) -> int:
        """Forget attempts that have left the window; returns how many."""
        async with self._db.transaction() as tx:
            result = await tx.execute(
                "DELETE FROM login_attempts WHERE attempted_at <= ?", (self._clock() - self.window,)
            )
        return result.rowcount
