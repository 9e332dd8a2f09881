"""`--workers N`: N processes serving one port, supervised by the process `run.py` started.

The workers listen with SO_REUSEPORT, so the kernel spreads connections over them; they share
the SQLite file (WAL, busy retries in `app.db`) and deliver each other's notifications through
Redis (`--workers` > 1 needs `--redis-url`, see `config.check_workers`). The parent serves
nothing itself:

- it applies the migrations once before any worker starts (several processes migrating one
  file at once would race to apply the same one);
- it starts the workers (multiprocessing "spawn": fresh interpreters, no state inherited by
  fork) and waits until each reports it is listening; if one dies first, it stops the others
  and exits 1;
- it forwards SIGTERM and SIGINT to every worker, each of which drains as a single process does
  (sockets closed with 1001 in spread batches), and waits for them all;
- a worker that dies later is started again (its clients reconnect to the others meanwhile).

Workers die with their parent (Linux PR_SET_PDEATHSIG, as SIGTERM so they still drain): a
killed supervisor leaves no orphan holding the port.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from app import create_app
from app.config import Settings
from app.db import database_from_settings
from app.migrate import migrate
from app.serving import serve

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings, worker: int | None = None) -> None:
    fmt = LOG_FORMAT if worker is None else LOG_FORMAT.replace("%(name)s", f"w{worker} %(name)s")
    logging.basicConfig(level=settings.log_level, format=fmt)


def serving_line(settings: Settings) -> str:
    url = f"http://{settings.host}:{settings.port}/"
    if settings.workers > 1:
        return f"Serving the marketplace on {url} with {settings.workers} worker processes"
    return f"Serving the marketplace on {url}"


async def prepare_database(settings: Settings) -> None:
    db = database_from_settings(settings)
    await db.open()
    try:
        await migrate(db)
    finally:
        await db.close()


def worker_main(settings: Settings, index: int, ready: Connection, parent: int) -> None:
    """A worker process: serve until SIGTERM / SIGINT (or the parent's death), as run.py does."""
    _die_with_parent(parent)
    configure_logging(settings, index)
    if index != 0:
        settings = dataclasses.replace(settings, demo=False)  # one process seeds demo data

    def on_ready() -> None:
        ready.send(os.getpid())
        ready.close()

    asyncio.run(serve(create_app(settings), on_ready))


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        sys.exit(1)


@dataclasses.dataclass
class _Worker:
    index: int
    process: BaseProcess
    ready: Connection | None  # None once it reported ready
    started_at: float


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stopping = False

    def run(self) -> int:
        """Start every worker, print the serving line, supervise; the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for index in range(self._settings.workers):
            self._start(index)
        if not self._await_ready():
            self._stop_all(signal.SIGTERM)
            self._join_all()
            return 1
        if self._stopping:
            return self._supervise()
        pids = ", ".join(str(w.process.pid) for w in self._workers.values())
        print(f"{serving_line(self._settings)} (pids {pids})", flush=True)
        return self._supervise()

    def _start(self, index: int) -> None:
        ours, theirs = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(self._settings, index, theirs, os.getpid()),
            name=f"marketplace-worker-{index}",
        )
        process.start()
        theirs.close()
        self._workers[index] = _Worker(index, process, ours, time.monotonic())
        if self._stopping and process.pid is not None:
            # The signal came while this one was being started, before it was listed.
            os.kill(process.pid, signal.SIGTERM)

    def _await_ready(self) -> bool:
        """Wait until every started worker listens; False when one dies or hangs first."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._stopping:
            starting = [w for w in self._workers.values() if w.ready is not None]
            if not starting:
                return True
            waitables: list[Connection | int] = []
            for worker in starting:
                assert worker.ready is not None
                waitables += [worker.ready, worker.process.sentinel]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error("a worker did not start within %.0f s", START_TIMEOUT_SECONDS)
                return False
            wait(waitables, remaining)
            for worker in starting:
                assert worker.ready is not None
                if worker.ready.poll():
                    try:
                        worker.ready.recv()
                    except EOFError:
                        pass  # closed without a word: it died; the sentinel says so
                    else:
                        worker.ready.close()
                        worker.ready = None
                        continue
                if not worker.process.is_alive():
                    log.error(
                        "worker %d exited with code %s during start-up",
                        worker.index,
                        worker.process.exitcode,
                    )
                    return False
        return True  # a signal came during start-up: stop as usual

    def _supervise(self) -> int:
        while True:
            running = [w for w in self._workers.values() if w.process.is_alive()]
            if self._stopping:
                self._join_all()
                # Killed by our own signal: it was not serving yet, or no longer (a serving
                # worker handles the signal and exits 0), so nothing was cut short.
                clean = (0, -signal.SIGTERM, -signal.SIGINT)
                failed = [w for w in self._workers.values() if w.process.exitcode not in clean]
                for worker in failed:
                    log.error(
                        "worker %d (pid %s) stopped with exit code %s",
                        worker.index,
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                return 1 if failed else 0
            if len(running) < len(self._workers):
                for worker in list(self._workers.values()):
                    if not worker.process.is_alive():
                        self._restart(worker)
                if not self._await_ready():
                    self._stop_all(signal.SIGTERM)
                    self._join_all()
                    return 1
                continue
            # Wakes when a worker exits; a signal ends the wait too (the handler signals the
            # workers, whose exits then wake us), so no polling either way.
            wait([w.process.sentinel for w in running])

    def _restart(self, worker: _Worker) -> None:
        log.error(
            "worker %d (pid %s) exited with code %s; starting it again",
            worker.index,
            worker.process.pid,
            worker.process.exitcode,
        )
        # One that dies at once would otherwise be restarted in a tight loop.
        pause = worker.started_at + RESTART_DELAY_SECONDS - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if not self._stopping:
            self._start(worker.index)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self._workers))
        self._stopping = True
        self._stop_all(signum)

    def _stop_all(self, signum: int) -> None:
        for worker in self._workers.values():
            if worker.process.is_alive() and worker.process.pid is not None:
                try:
                    os.kill(worker.process.pid, signum)
                except ProcessLookupError:
                    pass

    def _join_all(self) -> None:
        for worker in self._workers.values():
            worker.process.join()
