"""Serving the app on a TCP port, as `run.py` does: the listening site, signals, the fd limit.

aiohttp's `run_app` and `TCPSite` hand every accepted connection straight to aiohttp's own
protocol, with no hook between accept() and the first byte read. `LimitedTCPSite` is `TCPSite`
with `AdmissionProtocol` in that place, so the per-address cap (`app/connections.py`) applies
before aiohttp spends anything on a connection; `serve` is the rest of what `run_app` did.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Callable

from aiohttp import web

from app import keys
from app.connections import AdmissionProtocol, ConnectionLimiter

log = logging.getLogger(__name__)


class LimitedTCPSite(web.BaseSite):
    """A TCP listening site whose connections must pass a `ConnectionLimiter` first."""

    __slots__ = ("_host", "_limiter", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.AppRunner,
        limiter: ConnectionLimiter,
        host: str,
        port: int,
        *,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._limiter = limiter
        self._reuse_port = reuse_port
        self._host = host
        self._port = port

    @property
    def port(self) -> int:
        """The bound port (the one the system chose when asked for port 0)."""
        if self._server is not None and (sockets := getattr(self._server, "sockets", None)):
            return int(sockets[0].getsockname()[1])
        return self._port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "the runner must be set up first"
        limiter = self._limiter

        def admission() -> asyncio.Protocol:
            return AdmissionProtocol(limiter, server)

        # reuse_port: several worker processes listen on one port and the kernel spreads
        # incoming connections over them (SO_REUSEPORT), none of them a bottleneck.
        self._server = await asyncio.get_running_loop().create_server(
            admission,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: the soft default (often 1024) is what a
    flood of connections exhausts first, and nothing else in the process needs it low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        log.info("open-file limit: %d (already the hard limit)", soft)
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("open-file limit stays at %d (hard limit %d): %s", soft, hard, exc)
        return
    log.info("open-file limit raised from %d to %d", soft, hard)


async def serve(app: web.Application, on_ready: Callable[[], None], backlog: int = 1024) -> None:
    """Serve `app` on its configured host and port until SIGINT or SIGTERM, then shut down
    gracefully (the app's on_shutdown, then its cleanup contexts)."""
    stop = _stop_on_signals()
    settings = app[keys.SETTINGS]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = LimitedTCPSite(
            runner,
            app[keys.CONNECTIONS],
            settings.host,
            settings.port,
            backlog=backlog,
            reuse_port=settings.workers > 1,
        )
        await site.start()
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def _stop_on_signals() -> asyncio.Event:
    # Kept for the whole shutdown: a second signal while it runs changes nothing.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
