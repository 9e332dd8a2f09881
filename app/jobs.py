"""Periodic maintenance jobs, run by one process at a time.

Several processes on one database are one site, so a job that resolves interrupted payments or
prunes old rows must not run in all of them at once. Each run first takes the job's lease in
the `job_leases` table: a row saying which process holds it until when. The holder renews it
at every run; when it dies, the lease expires and another process takes the job over. The
jobs themselves are also safe to run twice (conditional updates, deletes by age): the lease
saves work, it is not what keeps data right.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.db import Database
from app.tasks import cancel_and_wait

log = logging.getLogger(__name__)

JobFunction = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: JobFunction


def process_name() -> str:
    """This process, as a lease holder: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    def __init__(self, db: Database, holder: str, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.holder = holder
        self._clock = clock

    async def acquire(self, name: str, seconds: float) -> bool:
        """Take or renew the lease on `name` for `seconds`; False while another holds it."""
        now = self._clock()
        rows = await self._db.write_statement(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            " WHERE job_leases.expires_at <= ? OR job_leases.holder = excluded.holder"
            " RETURNING holder",
            (name, self.holder, now + seconds, now),
        )
        return bool(rows)

    async def release(self, name: str) -> None:
        await self._db.write_statement(
            "DELETE FROM job_leases WHERE name = ? AND holder = ?", (name, self.holder)
        )


class JobRunner:
    """Runs each job every `interval_seconds` (the first run at start) while it holds the lease."""

    def __init__(self, leases: Leases, jobs: list[Job]) -> None:
        self._leases = leases
        self._jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"job-{job.name}") for job in self._jobs
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        for job in self._jobs:
            try:
                await self._leases.release(job.name)
            except Exception:
                log.exception("releasing the lease on %s failed", job.name)

    async def _loop(self, job: Job) -> None:
        # A lease outlives a few missed runs, so a busy holder does not lose it to a race.
        lease_seconds = max(3 * job.interval_seconds, 1.0)
        while True:
            try:
                if await self._leases.acquire(job.name, lease_seconds):
                    await job.run()
            except Exception:
                log.exception("job %s failed", job.name)
            await asyncio.sleep(job.interval_seconds)
